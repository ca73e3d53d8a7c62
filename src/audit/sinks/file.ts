import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { size } from '../../core/config-fields.js';
import { jsonLine } from '../formats/json.js';
import type { AuditRecord, AuditSink, SinkContext, SinkKind } from '../sink.js';

/**
 * `file:`: JSON lines appended to a file for a log shipper (Filebeat, Vector, Fluent Bit) to tail. A batch is taken
 * once it is written and fsync'd. Past `rotateAt` the file is renamed `<path>.1` (older ones shift to `.2`, ...; the
 * oldest beyond `keep` is deleted) before the next batch starts a new one: shippers that follow renames (all the
 * above) read every line. A record is never split across two files.
 */
function schema() {
  return z.strictObject({
    /** The file written; its directory must exist. */
    path: z.string().min(1),
    /** The size past which the file is rotated (`100MiB`, `512KiB`, bytes). */
    rotateAt: size('100MiB'),
    /** Rotated files kept (`<path>.1` newest ... `<path>.<keep>`); 0 keeps none. */
    keep: z.number().int().min(0).max(1000).default(10),
  });
}

export type FileSinkConfig = z.output<ReturnType<typeof schema>>;

class FileSink implements AuditSink {
  readonly name: string;
  readonly #config: FileSinkConfig;
  #file: FileHandle | undefined;
  /** The open file's size, known once opened. */
  #size = 0;

  constructor(config: FileSinkConfig, ctx: SinkContext) {
    this.name = ctx.name;
    this.#config = config;
  }

  async send(batch: readonly AuditRecord[]): Promise<void> {
    if (batch.length === 0) return;
    let text = '';
    for (const record of batch) text += `${jsonLine(record)}\n`;
    const data = Buffer.from(text);
    try {
      let file = await this.#open();
      if (this.#size > 0 && this.#size + data.length > this.#config.rotateAt) {
        await this.#rotate();
        file = await this.#open();
      }
      await file.appendFile(data);
      this.#size += data.length;
      await file.sync();
    } catch (err) {
      // Written in part, perhaps: the batch is sent again whole (at least once), into a file opened afresh.
      await this.#closeFile();
      throw new Error(`writing ${this.#config.path} failed: ${(err as Error).message}`);
    }
  }

  async #open(): Promise<FileHandle> {
    if (this.#file !== undefined) return this.#file;
    const file = await open(this.#config.path, 'a', 0o640);
    this.#file = file;
    this.#size = (await file.stat()).size;
    return file;
  }

  async #rotate(): Promise<void> {
    await this.#closeFile();
    const { path, keep } = this.#config;
    if (keep === 0) await rm(path, { force: true });
    else {
      await rm(`${path}.${keep}`, { force: true });
      for (let n = keep - 1; n >= 1; n--) await renameIfPresent(`${path}.${n}`, `${path}.${n + 1}`);
      await renameIfPresent(path, `${path}.1`);
    }
    await syncDirectory(dirname(path));
    this.#size = 0;
  }

  async #closeFile(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.#closeFile();
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The renames are durable before the new file is written (else a crash could leave two files of one name's lines). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const fileSinkKind: SinkKind<FileSinkConfig> = {
  key: 'file',
  schema,
  create: (config, ctx) => new FileSink(config, ctx),
};
