/**
 * Small index segments, appended to one file per datanet instead of a file each. A
 * datanet makes a version every few seconds and the index a merged segment about as often,
 * so a file each was two creations, writes and renames a version — through the thread
 * pool, beside the node's synced LevelDB writes: the largest part of a catching-up node's
 * main thread after consensus (scripts/bench/catch-up.ts: 0.64 of 2.13 ms a version), and
 * a directory that grows by ~100,000 files a day on a busy datanet. An append here is one
 * write on an open file.
 *
 * Entry: "DNSP" (u32le), u32le name length, u32le byte length, sha256 of the bytes (32),
 * the name (ASCII), the bytes. Not synced, as the files were not: a segment lost in a crash
 * is rebuilt from the dataset. Opening scans the headers (through a 64 KiB window) and
 * cuts a torn tail; an entry whose bytes do not hash to its digest reads as corrupt. A name appended
 * again (a segment rebuilt) is the later entry.
 */
import { closeSync, existsSync, ftruncateSync, fstatSync, openSync, readSync, writeSync } from 'node:fs'
import { sha256 } from '../../src/codec/hash.ts'

const MAGIC = 0x50534e44 // "DNSP" read as u32le
const HEADER = 44

/**
 * Where each packed segment is, in columns: a datanet keeps ~2 entries a version for its
 * whole history, and an object and a Buffer per entry cost ~250 bytes beside its name.
 */
class Entries {
  private readonly slots = new Map<string, number>()
  private offsets: number[] = []
  private lengths: number[] = []
  private digests = Buffer.alloc(32 * 64)

  get names (): IterableIterator<string> {
    return this.slots.keys()
  }

  set (name: string, offset: number, length: number, digest: Uint8Array): void {
    let slot = this.slots.get(name)
    if (slot === undefined) {
      slot = this.offsets.length
      this.slots.set(name, slot)
      if (this.digests.length < 32 * (slot + 1)) {
        const grown = Buffer.alloc(2 * this.digests.length)
        this.digests.copy(grown)
        this.digests = grown
      }
    }
    this.offsets[slot] = offset
    this.lengths[slot] = length
    this.digests.set(digest, 32 * slot)
  }

  get (name: string): { offset: number, length: number, digest: Buffer } | undefined {
    const slot = this.slots.get(name)
    if (slot === undefined) return undefined
    return { offset: this.offsets[slot] as number, length: this.lengths[slot] as number, digest: this.digests.subarray(32 * slot, 32 * slot + 32) }
  }

  /** Forgets a name (its slot stays unused). */
  delete (name: string): void {
    this.slots.delete(name)
  }

  has (name: string): boolean {
    return this.slots.has(name)
  }
}

export class SegmentPack {
  readonly file: string
  private fd: number | undefined
  private end = 0
  private readonly entries = new Entries()

  /** Opens `file` when it exists (created at the first append). */
  constructor (file: string) {
    this.file = file
    if (existsSync(file)) this.open()
  }

  has (name: string): boolean {
    return this.entries.has(name)
  }

  /** The byte length of a packed segment, if packed. */
  size (name: string): number | undefined {
    return this.entries.get(name)?.length
  }

  names (): IterableIterator<string> {
    return this.entries.names
  }

  /** A packed segment's bytes (undefined when not packed); throws when they do not hash to their digest. */
  read (name: string): Uint8Array | undefined {
    const entry = this.entries.get(name)
    if (entry === undefined || this.fd === undefined) return undefined
    const bytes = Buffer.allocUnsafe(entry.length)
    if (readSync(this.fd, bytes, 0, entry.length, entry.offset) !== entry.length || !entry.digest.equals(sha256(bytes))) {
      throw new Error(`packed index segment ${name} is corrupt`)
    }
    return bytes
  }

  append (name: string, bytes: Uint8Array): void {
    const fd = this.fd ?? this.open()
    const label = Buffer.from(name, 'latin1')
    const header = Buffer.alloc(HEADER)
    header.writeUInt32LE(MAGIC, 0)
    header.writeUInt32LE(label.length, 4)
    header.writeUInt32LE(bytes.byteLength, 8)
    const digest = sha256(bytes)
    header.set(digest, 12)
    const entry = Buffer.concat([header, label, bytes])
    writeAll(fd, entry, this.end)
    this.entries.set(name, this.end + HEADER + label.length, bytes.byteLength, digest)
    this.end += entry.length
  }

  /** Forgets a packed segment found unusable (until the next open, where a later append of it wins). */
  forget (name: string): void {
    this.entries.delete(name)
  }

  close (): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  /** Opens (creating) the file and reads its headers; a torn or unreadable tail is cut off. */
  private open (): number {
    const fd = openSync(this.file, existsSync(this.file) ? 'r+' : 'w+')
    this.fd = fd
    const size = fstatSync(fd).size
    this.end = scan(fd, size, this.entries)
    if (this.end < size) ftruncateSync(fd, this.end)
    return fd
  }

  /** The names packed in `file`, read without changing it (tests, tools). */
  static names (file: string): string[] {
    if (!existsSync(file)) return []
    const fd = openSync(file, 'r')
    try {
      const entries = new Entries()
      scan(fd, fstatSync(fd).size, entries)
      return [...entries.names]
    } finally {
      closeSync(fd)
    }
  }
}

/**
 * Reads the headers of a pack of `size` bytes into `entries`; where the last whole entry
 * ends. Through a 64 KiB window: small segments' headers are read many to a call (a read
 * each took 2.2 µs an entry: 0.44 s for 200,000).
 */
function scan (fd: number, size: number, entries: Entries): number {
  const window = Buffer.allocUnsafe(1 << 16)
  let base = 0
  let held = 0
  /** `length` bytes at `at`, from the window (moved there when they are not in it). */
  const bytesAt = (at: number, length: number): Buffer | undefined => {
    if (at < base || at + length > base + held) {
      base = at
      held = readSync(fd, window, 0, window.length, at)
    }
    return at + length <= base + held ? window.subarray(at - base, at - base + length) : undefined
  }
  let at = 0
  while (at + HEADER <= size) {
    const header = bytesAt(at, HEADER)
    if (header === undefined || header.readUInt32LE(0) !== MAGIC) break
    const nameLength = header.readUInt32LE(4)
    const length = header.readUInt32LE(8)
    const next = at + HEADER + nameLength + length
    if (nameLength > 1024 || next > size) break
    const digest = Buffer.from(header.subarray(12, 44))
    const label = bytesAt(at + HEADER, nameLength)
    if (label === undefined) break
    entries.set(label.toString('latin1'), at + HEADER + nameLength, length, digest)
    at = next
  }
  return at
}

function writeAll (fd: number, bytes: Uint8Array, position: number): void {
  let done = 0
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done)
}
