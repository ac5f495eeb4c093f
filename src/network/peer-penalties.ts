/**
 * Application penalties per peer, for gossipsub's application-specific score (P5):
 * what the topic scores cannot see because it is learnt after a message was accepted
 * and relayed (a contribution whose shards turn out missing or wrong). Penalties decay
 * exponentially, like gossipsub's own counters, so a peer that stops misbehaving
 * recovers; P5 is `-penalty` (weighted by `appSpecificWeight`, 10 by default).
 */
export interface PeerPenaltiesOptions {
  /** Time for a penalty to halve (default 2 min, about P4's decay of 0.99 per second). */
  halfLifeMs?: number
  /** Penalties below this are forgotten (default 0.01). */
  floor?: number
  now?: () => number
}

interface Penalty { value: number, at: number }

export class PeerPenalties {
  private readonly penalties = new Map<string, Penalty>()
  private readonly halfLifeMs: number
  private readonly floor: number
  private readonly now: () => number

  constructor (opts: PeerPenaltiesOptions = {}) {
    this.halfLifeMs = opts.halfLifeMs ?? 120_000
    this.floor = opts.floor ?? 0.01
    this.now = opts.now ?? Date.now
  }

  /** Adds to a peer's penalty; a negative amount takes back an earlier one (never below zero). */
  add (peerId: string, amount: number): void {
    const value = Math.max(0, this.current(peerId) + amount)
    if (value < this.floor) this.penalties.delete(peerId)
    else this.penalties.set(peerId, { value, at: this.now() })
  }

  /** The peer's penalty now, decayed since it was last changed. */
  current (peerId: string): number {
    const p = this.penalties.get(peerId)
    if (p === undefined) return 0
    const value = p.value * Math.pow(0.5, (this.now() - p.at) / this.halfLifeMs)
    if (value < this.floor) {
      this.penalties.delete(peerId)
      return 0
    }
    return value
  }

  /** The application-specific score (P5) for gossipsub: minus the penalty. */
  score (peerId: string): number {
    const value = this.current(peerId)
    return value === 0 ? 0 : -value
  }

  get size (): number {
    return this.penalties.size
  }
}
