/**
 * Fault injection (DATANET_FAULT): one Byzantine behaviour switched on in an otherwise
 * honest validator, as CometBFT's misbehaviors, so the same binary is tested honest and
 * dishonest. Never on unless configured.
 */
import type { TypedDataDomain, Wallet } from 'ethers'
import { fromHex } from '../../../src/codec/hash.ts'
import type { HeightSetup } from '../../../src/consensus/driver.ts'
import { nilHeader, versionValue, type SignedVote, type Version } from '../../../src/consensus/version.ts'
import type { Wire } from '../../../src/consensus/wire.ts'
import { walletSigner, type ConsensusFault } from './datanet-consensus.ts'
import type { Logger } from '../../logger.ts'

export interface FaultContext {
  fault: ConsensusFault | undefined
  datanet: string
  wallet: Wallet
  domain: TypedDataDomain
  log: Logger
  setup: (height: number) => HeightSetup | undefined
  publish: (msg: Wire) => Promise<void>
  floodCount?: number
  floodBytes?: number
}

/** After an own vote for a value: `equivocate` adds a nil prevote, `bogus-header` the same vote over a header one record off. */
export async function misbehave (c: FaultContext, sv: SignedVote): Promise<void> {
  const v = sv.vote
  if (v.validator.toLowerCase() !== c.wallet.address.toLowerCase() || v.valueId === null) return
  const signer = walletSigner(c.wallet, c.domain)
  if (c.fault === 'equivocate' && v.type === 'prevote') {
    const nil = nilHeader(v.height)
    c.log.warn({ height: v.height, round: v.round }, 'fault injection: signing a conflicting nil prevote')
    await c.publish({ kind: 'vote', type: v.type, round: v.round, header: nil, signature: fromHex(signer.signVote(v.type, v.round, nil), 65), sentAt: Date.now() })
  } else if (c.fault === 'bogus-header') {
    // the same version id with a record count one off: what the contract would refuse
    const header = { ...sv.header, recordCount: sv.header.recordCount + 1 }
    c.log.warn({ height: v.height, round: v.round, type: v.type }, 'fault injection: signing a vote with a bogus header')
    await c.publish({ kind: 'vote', type: v.type, round: v.round, header, signature: fromHex(signer.signVote(v.type, v.round, header), 65), sentAt: Date.now() })
  }
}

/**
 * Signed proposals for future rounds this validator proposes (so each passes the gossip
 * signature check), with junk versions padded by `floodBytes`: the bounds must hold.
 */
export async function flood (c: FaultContext, height: number, round: number): Promise<void> {
  const setup = c.setup(height)
  if (setup === undefined) return
  const count = c.floodCount ?? 200
  const self = c.wallet.address.toLowerCase()
  const pad = ' '.repeat(c.floodBytes ?? 0)
  const signer = walletSigner(c.wallet, c.domain)
  let sent = 0
  for (let r = round + 1; sent < count && r <= round + count * 64; r++) {
    if (setup.proposer(r).toLowerCase() !== self) continue
    const version: Version = {
      datanet: c.datanet, height, parent: null, contributions: [], rejected: [], inferences: [], datasetRoot: new Uint8Array(32),
      recordCount: r, attributionRoot: new Uint8Array(32), totalAttributed: '0', validatorSetHash: new Uint8Array(32), proposer: c.wallet.address + pad, timestamp: Date.now()
    }
    const value = await versionValue(version)
    await c.publish({ kind: 'proposal', height, round: r, validRound: -1, version: value.bytes, signature: fromHex(signer.signProposal(height, r, -1, value), 65), sentAt: Date.now() })
    sent++
  }
  c.log.warn({ height, round, count: sent, bytes: pad.length }, 'fault injection: junk proposals published')
}
