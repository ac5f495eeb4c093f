/**
 * A datanet of four equal validators with fixed keys, for tests that drive one node's
 * consensus by hand: the datanet as a node follows it, the keys, and who proposes when.
 */
import { Wallet } from 'ethers'
import { encodeManifest, genesisValidatorSet, parseManifest } from '../../src/datanet/manifest.ts'
import { proposerSchedule } from '../../src/consensus/machine.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'

export interface FourValidators {
  d: FollowedDatanet
  wallets: Wallet[]
  /** The proposer of (height, round). */
  proposer: (height: number, round: number) => string
}

export async function fourValidators (name: string, timeoutsMs: { propose: number, vote: number }): Promise<FourValidators> {
  const wallets = Array.from({ length: 4 }, (_, i) => new Wallet('0x' + (i + 1).toString(16).padStart(64, '0')))
  const manifest = parseManifest({
    name, license: 'CC0-1.0', recordSchema: { type: 'object' },
    consensus: { versionIntervalMs: 10, proposeTimeoutMs: timeoutsMs.propose, prevoteTimeoutMs: timeoutsMs.vote, precommitTimeoutMs: timeoutsMs.vote, timeoutDeltaMs: 0 },
    validators: wallets.map(w => ({ address: w.address, stake: '100' }))
  })
  const encoded = await encodeManifest(manifest)
  const d: FollowedDatanet = { id: encoded.id, digest: encoded.digest, manifest, validators: genesisValidatorSet(manifest), validateRecord: () => undefined as never }
  const proposer = proposerSchedule(d.validators.validators.map(v => ({ address: v.address, power: v.stake })))
  return { d, wallets, proposer }
}
