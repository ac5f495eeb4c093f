#!/usr/bin/env node
import { enableCompileCache } from 'node:module'

// JavaScript, not TypeScript: the entry is loaded before the compile cache is on, and
// stripping its types would load Node's type stripper (swc in WebAssembly: ~13 MB of RSS
// for the process's life, and a slower start) although every later .ts comes from the cache.
// V8's on-disk code cache: later starts skip most of parsing and compiling the node's
// dependencies (a third of its start-up time).
enableCompileCache?.()
const { main } = await import('./program.ts')

process.exitCode = await main(process.argv.slice(2))
// The command is done and its output written: a socket or timer some library left open
// must not keep the process (a devnet that failed, a script waiting on it) alive.
setTimeout(() => process.exit(), 5000).unref()
