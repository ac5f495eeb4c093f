#!/usr/bin/env node
import { enableCompileCache } from 'node:module'
import { freshBundle } from './bundle.js'

// JavaScript, not TypeScript: the entry is loaded before the compile cache is on, and
// stripping its types would load Node's type stripper (swc in WebAssembly: ~13 MB of RSS
// for the process's life, and a slower start) although every later .ts comes from the cache.
// V8's on-disk code cache: later starts skip most of parsing and compiling the node's
// dependencies (a third of its start-up time).
enableCompileCache?.()
// the bundle (scripts/build.ts) while it is fresh, else the sources
const bundle = freshBundle()
if (process.argv[2] === 'node' && process.argv[3] === 'start') {
  // the keystore's scrypt (~0.8 s) on the thread pool while the node loads
  const { prefetchKeystore } = await import(bundle?.['keystore-prefetch'] ?? './keystore-prefetch.ts')
  prefetchKeystore(process.argv.slice(4))
}
const { main } = await import(bundle?.program ?? './program.ts')

process.exitCode = await main(process.argv.slice(2))
// The command is done and its output written: a socket or timer some library left open
// must not keep the process (a devnet that failed, a script waiting on it) alive.
setTimeout(() => process.exit(), 5000).unref()
