import { join } from 'node:path'

// Apart from data-dir.ts, which loads key libraries: `node start` reads the keystore path
// before those load (node/cli/keystore-prefetch.ts).

/** Paths inside a data directory: one place that knows the layout. */
export function dataDirPaths (dir: string) {
  return {
    dir,
    meta: join(dir, 'datanet.json'),
    lock: join(dir, 'node.lock'),
    libp2pKey: join(dir, 'keys', 'libp2p.key'),
    keystore: join(dir, 'keys', 'keystore.json'),
    apiToken: join(dir, 'api-token'),
    apiInfo: join(dir, 'api.json'),
    state: join(dir, 'state'),
    blocks: join(dir, 'blocks'),
    datastore: join(dir, 'datastore'),
    /** Attribution index segments (rebuilt from the dataset when missing). */
    attribution: join(dir, 'attribution')
  }
}
export type DataDirPaths = ReturnType<typeof dataDirPaths>
