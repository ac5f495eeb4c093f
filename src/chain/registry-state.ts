/**
 * What the registry's event log says about one datanet, folded into values (no I/O):
 * the validator set in force for every height, the anchors, funding and claims.
 *
 * The contract takes versions at multiples of the datanet's anchorInterval only (fixed on
 * chain at creation) and applies joins and leaves right after each, so the set that decides
 * heights A+1 .. A+interval is the set after the anchor of height A (the genesis set before
 * the first anchor), whoever anchored. Every node replaying the same log derives the same set.
 */

export interface ValidatorStake {
  address: string
  stake: bigint
}

interface EventBase {
  datanetId: string
  block: number
  logIndex: number
  txHash: string
}

export type RegistryEvent = EventBase & (
  /** anchorInterval: the one on chain (absent only in hand-written logs: the manifest's then applies). */
  | { kind: 'created', validators: ValidatorStake[], anchorInterval?: number }
  | { kind: 'join-requested', validator: string, stake: bigint, peerId: string }
  | { kind: 'leave-requested', validator: string }
  | { kind: 'activated', validator: string, stake: bigint, height: number }
  | { kind: 'deactivated', validator: string, height: number, unlockAt: number }
  | { kind: 'withdrawn', validator: string, amount: bigint }
  | { kind: 'committed', height: number, version: string, datasetRoot: string, attributionRoot: string, totalAttributed: bigint }
  | { kind: 'funded', amount: bigint, totalFunded: bigint }
  | { kind: 'claimed', account: string, amount: bigint, cumulativeAmount: bigint }
  | { kind: 'slashed', validator: string, amount: bigint }
  | { kind: 'inference-paid', eventId: string, payer: string, amount: bigint }
)

export interface Anchor {
  height: number
  version: string
  datasetRoot: string
  attributionRoot: string
  totalAttributed: bigint
  txHash: string
  block: number
  /** The active set right after this anchor: the set of the heights that follow it. */
  setAfter: ValidatorStake[]
}

export type ValidatorStatus = 'active' | 'joining' | 'leaving' | 'unbonding' | 'slashed'

export interface ValidatorInfo {
  address: string
  stake: bigint
  status: ValidatorStatus
  peerId: string | null
  /** Height of the anchor after which it became active (0 for genesis). */
  since: number
  unlockAt: number | null
}

export interface DatanetChainState {
  datanetId: string
  created: { block: number, txHash: string } | null
  genesis: ValidatorStake[]
  /** Heights the contract anchors (multiples of it); null until created or when the log does not say. */
  anchorInterval: number | null
  anchors: Anchor[]
  validators: Map<string, ValidatorInfo>
  totalFunded: bigint
  totalClaimed: bigint
  claimed: Map<string, bigint>
  /** Inference fees escrowed, by `eventId/payer` (an event counts its operator's payment only: `inferenceEscrow`). */
  inferencesPaid: Map<string, { payer: string, amount: bigint, block: number }>
  /** Slashed validators still in the set (with their stake's weight) until the next anchor removes them. */
  slashedInSet: Map<string, bigint>
}

export function emptyChainState (datanetId: string): DatanetChainState {
  return { datanetId, created: null, genesis: [], anchorInterval: null, anchors: [], validators: new Map(), totalFunded: 0n, totalClaimed: 0n, claimed: new Map(), inferencesPaid: new Map(), slashedInSet: new Map() }
}

const byAddress = (a: ValidatorStake, b: ValidatorStake): number => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)

/** The active set now (as the contract holds it: slashed members until the next anchor), sorted by address (lowercase). */
export function activeSet (state: DatanetChainState): ValidatorStake[] {
  const out: ValidatorStake[] = []
  for (const v of state.validators.values()) if (v.status === 'active' || v.status === 'leaving') out.push({ address: v.address, stake: v.stake })
  for (const [address, stake] of state.slashedInSet) out.push({ address, stake })
  return out.sort(byAddress)
}

/** Folds one event in (mutates `state`, which callers own). Events must come in log order. */
export function applyRegistryEvent (state: DatanetChainState, e: RegistryEvent): void {
  const lower = (a: string): string => a.toLowerCase()
  switch (e.kind) {
    case 'created':
      state.created = { block: e.block, txHash: e.txHash }
      state.anchorInterval = e.anchorInterval ?? null
      state.genesis = e.validators.map(v => ({ address: lower(v.address), stake: v.stake })).sort(byAddress)
      for (const v of state.genesis) state.validators.set(v.address, { address: v.address, stake: v.stake, status: 'active', peerId: null, since: 0, unlockAt: null })
      break
    case 'join-requested':
      state.validators.set(lower(e.validator), { address: lower(e.validator), stake: e.stake, status: 'joining', peerId: e.peerId, since: 0, unlockAt: null })
      break
    case 'leave-requested': {
      const v = state.validators.get(lower(e.validator))
      if (v !== undefined) v.status = 'leaving'
      break
    }
    case 'activated': {
      const v = state.validators.get(lower(e.validator))
      state.validators.set(lower(e.validator), { address: lower(e.validator), stake: e.stake, status: 'active', peerId: v?.peerId ?? null, since: e.height, unlockAt: null })
      break
    }
    case 'deactivated': {
      const v = state.validators.get(lower(e.validator))
      state.slashedInSet.delete(lower(e.validator))
      if (v !== undefined && v.status !== 'slashed') { v.status = 'unbonding'; v.unlockAt = e.unlockAt }
      break
    }
    case 'withdrawn':
      state.validators.delete(lower(e.validator))
      break
    case 'slashed': {
      // the stake is burned now; an active member leaves the set at the next anchor
      const v = state.validators.get(lower(e.validator))
      if (v !== undefined && (v.status === 'active' || v.status === 'leaving')) state.slashedInSet.set(v.address, v.stake)
      if (v !== undefined) { v.status = 'slashed'; v.stake = 0n; v.unlockAt = null }
      break
    }
    case 'committed':
      // The contract emits the commit before applying set changes, whose events follow in
      // the same transaction; setAfter is completed by `sealAnchors` once the tx is read.
      state.anchors.push({ height: e.height, version: e.version, datasetRoot: e.datasetRoot, attributionRoot: e.attributionRoot, totalAttributed: e.totalAttributed, txHash: e.txHash, block: e.block, setAfter: [] })
      break
    case 'funded':
      state.totalFunded = e.totalFunded
      break
    case 'inference-paid':
      state.inferencesPaid.set(`${e.eventId.toLowerCase()}/${lower(e.payer)}`, { payer: lower(e.payer), amount: e.amount, block: e.block })
      state.totalFunded += e.amount
      break
    case 'claimed':
      state.claimed.set(lower(e.account), e.cumulativeAmount)
      state.totalClaimed += e.amount
      break
  }
}

/**
 * Replays a log (in order) into states per datanet. An anchor's `setAfter` is the active
 * set once every event of its transaction is applied.
 */
export function replayRegistryLog (events: readonly RegistryEvent[], into: Map<string, DatanetChainState> = new Map()): Map<string, DatanetChainState> {
  let open: { state: DatanetChainState, anchor: Anchor } | undefined
  const seal = (): void => {
    if (open !== undefined) open.anchor.setAfter = activeSet(open.state)
    open = undefined
  }
  for (const e of events) {
    if (open !== undefined && (open.anchor.txHash !== e.txHash || open.state.datanetId !== e.datanetId)) seal()
    let state = into.get(e.datanetId)
    if (state === undefined) {
      state = emptyChainState(e.datanetId)
      into.set(e.datanetId, state)
    }
    applyRegistryEvent(state, e)
    if (e.kind === 'committed') {
      seal()
      open = { state, anchor: state.anchors[state.anchors.length - 1] as Anchor }
    }
  }
  seal()
  return into
}

/**
 * The set that decides `height` given an anchor every `interval` heights: the set after the
 * anchor of height floor((height-1)/interval)*interval, the genesis set before the first.
 * Undefined while that anchor is not on chain yet: the height must wait for it. `interval`
 * must be the chain's (`state.anchorInterval`, see `anchorIntervalOf`).
 */
export function setForHeight (state: DatanetChainState, height: number, interval: number): ValidatorStake[] | undefined {
  if (state.created === null) return undefined
  const anchorHeight = Math.floor((height - 1) / interval) * interval
  if (anchorHeight === 0) return state.genesis
  // The last anchor at or below that height: a skipped anchor point (someone anchored a
  // later height of the same interval first cannot happen, heights only grow) means the set
  // did not change since the previous one.
  for (let i = state.anchors.length - 1; i >= 0; i--) {
    const a = state.anchors[i] as Anchor
    if (a.height === anchorHeight) return a.setAfter
    if (a.height < anchorHeight) return undefined
  }
  return undefined
}

/** The interval the contract anchors at: the chain's, else (a hand-written log) `fallback`. */
export function anchorIntervalOf (state: DatanetChainState | undefined, fallback: number): number {
  return state?.anchorInterval ?? fallback
}

export function anchorAt (state: DatanetChainState, height: number): Anchor | undefined {
  return state.anchors.find(a => a.height === height)
}

export function lastAnchor (state: DatanetChainState): Anchor | undefined {
  return state.anchors[state.anchors.length - 1]
}

/** The fee `payer` escrowed for an inference event, or undefined (others' payments for the id do not count). */
export function inferenceEscrow (state: DatanetChainState, eventId: string, payer: string): { payer: string, amount: bigint, block: number } | undefined {
  return state.inferencesPaid.get(`${eventId.toLowerCase()}/${payer.toLowerCase()}`)
}

/** What a datanet's manifest fixes that its registration must repeat. */
export interface RegistrationTerms {
  anchorInterval: number
  validators: ReadonlyArray<{ address: string, stake: string | bigint }>
}

/**
 * Why a registration is not the manifest's datanet, or undefined when it is — or when nothing
 * is registered yet. Our registry reads the genesis set and interval from the manifest's own
 * bytes (issue 12 item 4), so this never finds a problem there; it guards the node against a
 * registry at the configured address that does not (an older or another contract), where a
 * squatter could register a manifest's id with itself as sole validator. A registration is
 * immutable once made, so the answer never changes after `created`.
 */
export function registrationProblem (state: DatanetChainState | undefined, terms: RegistrationTerms): string | undefined {
  if (state?.created == null) return undefined
  if (state.anchorInterval !== null && state.anchorInterval !== terms.anchorInterval) {
    return `the registry anchors it every ${state.anchorInterval} versions, the manifest every ${terms.anchorInterval}`
  }
  const expected = new Map(terms.validators.map(v => [v.address.toLowerCase(), BigInt(v.stake)]))
  const registered = new Map(state.genesis.map(v => [v.address, v.stake]))
  const differences: string[] = []
  for (const [address, stake] of registered) {
    const want = expected.get(address)
    if (want === undefined) differences.push(`${address} is not in the manifest`)
    else if (want !== stake) differences.push(`${address} staked ${stake} wei, the manifest says ${want}`)
  }
  for (const address of expected.keys()) if (!registered.has(address)) differences.push(`${address} is missing`)
  if (differences.length === 0) return undefined
  const shown = differences.slice(0, 3).join('; ') + (differences.length > 3 ? `; ${differences.length - 3} more` : '')
  return `its genesis set is not the manifest's (${shown})`
}
