// The anvil launcher lives with the devnet, which starts it too; tests reuse it.
export { ANVIL_MNEMONIC, anvilBinary, startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
