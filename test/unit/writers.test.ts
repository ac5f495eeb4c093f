import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { checkWriters, WRITERS } from '../../scripts/check-writers.ts'
import { tempProject } from '../helpers/tmp.ts'

const repoRoot = join(import.meta.dirname, '..', '..')

const project = (files: Record<string, string>): { dir: string, remove: () => void } => tempProject(files, 'datanet-writers-')

test('a write from a service that does not own the repository is reported with file and line', () => {
  const tmp = project({
    'node/services/verdicts.ts': 'await this.opts.db.verdicts.put(entry)\n',
    // the old anchor path: the chain service rewrote the version entry
    'node/services/chain.ts': [
      'const entry = await this.opts.db.versions.at(d, h)', // a read: fine
      'await this.opts.db.versions.put(key, { ...entry, anchor })',
      'await db.evidence.markSubmitted(e, tx)',
      'await db.evidence.keep(e)',
      '// db.models.put(x) in a comment is not code',
      "const s = 'db.models.put(x)'"
    ].join('\n'),
    'node/api/routes/x.ts': 'await db.secrets.put(1)\n'
  })
  try {
    const vs = checkWriters(tmp.dir)
    assert.equal(vs.map(v => `${v.file}:${v.line}`).sort(), ['node/api/routes/x.ts:1', 'node/services/chain.ts:2', 'node/services/chain.ts:4'])
    assert.match(vs.find(v => v.line === 2)?.what ?? '', /owned by node\/services\/consensus\/versions\.ts/)
    assert.match(vs.find(v => v.file.endsWith('x.ts'))?.what ?? '', /no declared writer/)
  } finally {
    tmp.remove()
  }
})

test('the repository itself: every stored entity is written by its declared owner only', () => {
  assert.equal(checkWriters(repoRoot), [])
  // and the declaration names no file that is gone
  for (const files of Object.values(WRITERS)) for (const f of files) assert.ok(existsSync(join(repoRoot, f)), `${f} is declared a writer but does not exist`)
})

test.run()
