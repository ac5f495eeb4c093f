#!/usr/bin/env node
import { enableCompileCache } from 'node:module'

// V8's on-disk code cache: later starts skip most of parsing and compiling the node's
// dependencies (a third of its start-up time).
enableCompileCache?.()
const { main } = await import('./program.ts')

process.exitCode = await main(process.argv.slice(2))
