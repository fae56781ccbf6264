// An independent reader of TensorBoard event files for the tests: TFRecord framing checked with
// another CRC-32C implementation (@node-rs/crc32) and the Event messages decoded by protobufjs from
// the .proto definitions (tensorflow/core/util/event.proto, framework/summary.proto, the fields used).
import { readFileSync } from 'node:fs';
import { crc32c } from '@node-rs/crc32';
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
message SummaryValue { string tag = 1; float simple_value = 2; }
message Summary { repeated SummaryValue value = 1; }
message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
`;
const Event = protobuf.parse(PROTO).root.lookupType('Event');

function masked(bytes: Uint8Array): number {
  const c = crc32c(Buffer.from(bytes)) >>> 0;
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
}

export function readEventFile(file: string): DecodedEvent[] {
  const buf = readFileSync(file);
  const events: DecodedEvent[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    if (buf.readUInt32LE(at + 8) !== masked(buf.subarray(at, at + 8)))
      throw new Error(`${file}@${at}: length CRC mismatch`);
    const data = buf.subarray(at + 12, at + 12 + len);
    if (buf.readUInt32LE(at + 12 + len) !== masked(data)) throw new Error(`${file}@${at}: data CRC mismatch`);
    at += 16 + len;
    const e = Event.toObject(Event.decode(data), { longs: Number }) as {
      wallTime: number;
      step?: number;
      fileVersion?: string;
      summary?: { value?: { tag: string; simpleValue: number }[] };
    };
    const scalars: Record<string, number> = {};
    for (const v of e.summary?.value ?? []) scalars[v.tag] = v.simpleValue;
    events.push({ wallTime: e.wallTime, step: e.step ?? 0, fileVersion: e.fileVersion, scalars });
  }
  return events;
}
