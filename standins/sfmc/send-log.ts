import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Where the SFMC stand-in keeps the accepted sends themselves (JSON lines, in the order
 * received), so its memory holds only a compact index of them (sends.ts): a full bench accepts
 * ~270,000 sends, which as objects cost ~3 KiB each; here they cost the file's bytes on disk.
 *
 * Two forms with one interface: a file (the stack's, reloaded on start, so the 109110 dedup
 * survives a restart) and, with no file, an array of the same lines in memory (unit tests).
 * Entries are numbered 0, 1, 2... in append order; the index refers to them by number.
 */
export interface SendLog {
  /** Appends lines (no newline inside) as entries; one write for the lot. */
  append(lines: readonly string[]): void;
  /** Entries [from, to) as lines, read lazily a few MiB at a time. */
  read(from: number, to: number): Iterable<string>;
  readonly length: number;
  close(): void;
}

export class MemoryLog implements SendLog {
  private lines: string[] = [];
  get length(): number {
    return this.lines.length;
  }
  append(lines: readonly string[]): void {
    for (const l of lines) this.lines.push(l);
  }
  *read(from: number, to: number): Iterable<string> {
    for (let i = from; i < Math.min(to, this.lines.length); i++) yield this.lines[i] as string;
  }
  close(): void {
    this.lines = [];
  }
}

/** Growable Float64 column: 8 bytes per entry (byte offsets and epoch ms stay exact). */
export class Column {
  private data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  at(i: number): number {
    return this.data[i] as number;
  }
}

const READ_CHUNK = 4 << 20;

/**
 * JSON-lines file, opened once in append mode. An append is one write(2) and no fsync: the
 * bytes are in the kernel's page cache before the stand-in answers, so they survive the
 * stand-in's crash or kill -9 (what the fault suite does to processes), not a crash of the
 * machine — enough for a local stand-in, and the cost of an fsync per request is gone.
 */
export class FileLog implements SendLog {
  /** Byte offset where entry i starts; entry i ends where i+1 starts (or at `end`). */
  private readonly starts = new Column();
  private end = 0;
  private fd: number;

  /** Opens the file, indexing its existing lines; `onLine` sees each (entry number, line). */
  constructor(
    readonly file: string,
    onLine: (entry: number, line: string) => void,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.fd = openSync(file, existsSync(file) ? 'r+' : 'w+');
    this.index(onLine);
    closeSync(this.fd);
    this.fd = openSync(file, 'a');
  }

  get length(): number {
    return this.starts.length;
  }

  append(lines: readonly string[]): void {
    if (lines.length === 0) return;
    if (this.fd < 0) throw new Error(`${this.file}: the send log is closed`);
    const text = lines.map((l) => `${l}\n`).join('');
    const bytes = Buffer.from(text, 'utf8');
    let pos = this.end;
    for (const l of lines) {
      this.starts.push(pos);
      pos += Buffer.byteLength(l, 'utf8') + 1;
    }
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
    this.end += bytes.length;
  }

  *read(from: number, to: number): Iterable<string> {
    const last = Math.min(to, this.length);
    if (from >= last) return;
    const fd = openSync(this.file, 'r');
    try {
      let entry = from;
      while (entry < last) {
        // One read covers as many whole entries as fit in READ_CHUNK (at least one).
        const start = this.starts.at(entry);
        let stop = entry + 1;
        while (stop < last && this.startOf(stop + 1) - start <= READ_CHUNK) stop++;
        const length = this.startOf(stop) - start;
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const n = readSync(fd, buf, got, length - got, start + got);
          if (n === 0) throw new Error(`${this.file}: shorter than its index (truncated by someone else?)`);
          got += n;
        }
        const text = buf.toString('utf8');
        let at = 0;
        for (let i = entry; i < stop; i++) {
          const nl = text.indexOf('\n', at);
          yield text.slice(at, nl);
          at = nl + 1;
        }
        entry = stop;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Idempotent: a stand-in closed twice (a test and its afterEach) closes the file once. */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private startOf(entry: number): number {
    return entry < this.length ? this.starts.at(entry) : this.end;
  }

  private index(onLine: (entry: number, line: string) => void): void {
    const size = fstatSync(this.fd).size;
    let offset = 0;
    let carry = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    while (offset < size) {
      const n = readSync(this.fd, buf, 0, Math.min(READ_CHUNK, size - offset), offset);
      if (n === 0) break;
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const chunkStart = offset - carry.length;
      let at = 0;
      for (let nl = chunk.indexOf(10, at); nl !== -1; nl = chunk.indexOf(10, at)) {
        const line = chunk.toString('utf8', at, nl);
        this.starts.push(chunkStart + at);
        onLine(this.starts.length - 1, line);
        at = nl + 1;
      }
      carry = Buffer.from(chunk.subarray(at));
      offset += n;
    }
    this.end = size - carry.length;
    // A crash mid-append leaves a torn last line, never answered: cut it off, so the next
    // append starts on a line of its own instead of gluing onto it.
    if (carry.length > 0) ftruncateSync(this.fd, this.end);
  }
}
