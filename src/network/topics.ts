import { createTopicScoreParams, type TopicScoreParams } from '@libp2p/gossipsub/score'

/** Gossip topic names (DESIGN §4): every topic the node speaks, here only. */
export const topics = {
  contributions: (datanet: string): string => `/datanet/1/${datanet}/contributions`,
  verdicts: (datanet: string): string => `/datanet/1/${datanet}/verdicts`,
  consensus: (datanet: string): string => `/datanet/1/${datanet}/consensus`,
  /**
   * Anchor shares (BLS anchors): a topic of their own, so that nodes of a version before
   * them never see one (on the consensus topic they rejected each, and scored its sender down).
   */
  shares: (datanet: string): string => `/datanet/1/${datanet}/shares`,
  inferences: (datanet: string): string => `/datanet/1/${datanet}/inferences`,
  models: (datanet: string): string => `/datanet/1/${datanet}/models`,
  /** Signed node announcements (not per datanet). */
  announce: '/datanet/1/nodes/announce'
}

/**
 * Peer-score parameters for a datanet topic. These topics are quiet (a message per
 * contribution or verdict), so mesh-delivery quotas, which punish peers for not
 * forwarding enough, are off; what counts is first deliveries (a small reward) and
 * invalid messages (P4, squared: a few rejections drive a peer's score negative).
 */
export function datanetTopicScoreParams (): TopicScoreParams {
  return createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -100,
    invalidMessageDeliveriesDecay: 0.99
  })
}
