import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import * as lib from '../../src/attribution/index.ts'
import { CorpusIndex, type IndexRecord, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { AttributionService } from '../../node/services/attribution.ts'
import { storedSegmentNames } from '../../node/services/index-segments.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { StateDatabase, VersionEntry } from '../../src/storage/state-db.ts'
import type { Helia } from '@helia/interface'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'
import { tempDir } from '../helpers/tmp.ts'

const WORDS = ['quartz', 'raven', 'sable', 'tundra', 'umber', 'vale', 'willow', 'xenon', 'yarrow', 'zephyr', 'alder', 'bramble', 'cobalt', 'dune']
const HEIGHTS = 26
const digest = '0x' + 'ab'.repeat(32)
const d = { id: 'datanet-1', digest, manifest: { attribution: {} } } as unknown as FollowedDatanet
const params = lib.attributionParamsFromManifest(d.manifest)

/** Per-version segments (undefined: no records that version) and every record's text. */
const { segments, texts } = (() => {
  const r = prng(99)
  const out: Array<IndexSegment | undefined> = []
  const all: string[] = []
  let index = CorpusIndex.empty()
  for (let h = 1; h <= HEIGHTS; h++) {
    if (h === 9) { out.push(undefined); continue }
    const records: IndexRecord[] = Array.from({ length: 1 + randomInt(r, 3) }, () => {
      const text = Array.from({ length: 14 + randomInt(r, 20) }, () => WORDS[randomInt(r, WORDS.length)]).join(' ')
      all.push(text)
      return { recordIndex: all.length - 1, contributor: '0x' + String(1 + randomInt(r, 4)).repeat(40), text }
    })
    const built = index.appendRecords(records)
    out.push(built.segment)
    index = built.index
  }
  return { segments: out, texts: all }
})()

const entry = (height: number): VersionEntry => ({ datanet: d.id, height, contributions: [] }) as unknown as VersionEntry
/** A state database that knows versions 1..final (and nothing else the service asks while its segment files are there). */
function fakeDb (final: { height: number }): StateDatabase {
  return {
    versions: {
      of: async () => Array.from({ length: final.height }, (_, i) => entry(i + 1)),
      at: async (_id: string, h: number) => h >= 1 && h <= final.height ? entry(h) : undefined
    }
  } as unknown as StateDatabase
}

const outputs = [0, 3, 10, texts.length - 1].map(i => `Indeed ${texts[i] as string} said ${(texts[(i * 7) % texts.length] as string).split(' ').slice(0, 13).join(' ')}`)
function expected (h: number): string {
  const index = CorpusIndex.fromSegments(segments.slice(0, h).filter((s): s is IndexSegment => s !== undefined))
  return JSON.stringify(outputs.map(o => lib.attribute(index, o, null, 10n ** 18n, params)))
}
async function actual (service: AttributionService, h: number): Promise<string> {
  const results = []
  for (const o of outputs) results.push(await service.attribute(d, h, o, null, 10n ** 18n))
  return JSON.stringify(results)
}
const checked = [1, 2, 8, 9, 16, 17, HEIGHTS - 4, HEIGHTS]

test('AttributionService: versions merged in the background answer as unmerged ones at old and new heights, and across a restart', async () => {
  const tmp = tempDir()
  try {
    const dir = join(tmp.dir, digest.slice(2))
    mkdirSync(dir, { recursive: true })
    segments.forEach((s, i) => { if (s !== undefined) writeFileSync(join(dir, `${(i + 1).toString().padStart(10, '0')}.seg`), lib.encodeSegment(s)) })
    const final = { height: HEIGHTS - 4 }
    const options = { db: fakeDb(final), helia: {} as unknown as Helia, dir: tmp.dir, logger: pino({ level: 'silent' }), segments: { fanout: 2 } }
    assert.ok((JSON.parse(expected(HEIGHTS)) as Array<{ contributors: unknown[] }>).every(x => x.contributors.length > 0), 'every output credits someone')
    const service = new AttributionService(options)
    await service.follow(d)
    assert.is(service.latestHeight(d), HEIGHTS - 4)
    for (const h of checked.filter(h => h <= final.height)) assert.is(await actual(service, h), expected(h), `version ${h}, merges under way`)
    // four more versions become final
    final.height = HEIGHTS
    await service.onFinal(d)
    assert.is(service.latestHeight(d), HEIGHTS)
    await service.mergesIdle(d)
    const merged = storedSegmentNames(dir).filter(f => f.startsWith('m-')).sort()
    assert.ok(merged.includes('m-0000000001-0000000016.seg'), merged.join(' '))
    // the largest aligned range ending at each even height (merge-policy.ts)
    assert.is(merged.length, 13)
    for (const h of checked) assert.is(await actual(service, h), expected(h), `version ${h}, merged`)
    assert.is(await service.attribute(d, HEIGHTS + 1, 'anything', null, 1n), undefined)
    const weights = await service.weightsByContributor(d, HEIGHTS)
    assert.equal([...weights].sort(), [...lib.contentWeights(segments.filter((s): s is IndexSegment => s !== undefined), params.maxRecordTokens)].sort())
    await service.stop()

    const restarted = new AttributionService(options)
    await restarted.follow(d)
    await restarted.mergesIdle(d)
    assert.is(storedSegmentNames(dir).filter(f => f.startsWith('m-')).length, merged.length)
    for (const h of checked) assert.is(await actual(restarted, h), expected(h), `version ${h}, after a restart`)
    await restarted.stop()
  } finally {
    tmp.remove()
  }
})

test.run()
