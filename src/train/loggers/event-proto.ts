// The few protobuf messages of a TensorBoard event file, encoded by hand (a protobuf library for
// three messages would be more code than this): tensorflow/core/util/event.proto's Event
// (wall_time = 1 double, step = 2 int64, file_version = 3 string, summary = 5) and
// summary.proto's Summary (value = 1 repeated) / Summary.Value (tag = 1 string, simple_value = 2 float).

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

/** A field's key: its number and wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit). */
function key(field: number, wire: 0 | 1 | 2 | 5): number[] {
  return varint(BigInt((field << 3) | wire));
}

function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...key(field, 2), ...varint(BigInt(bytes.length))]), bytes]);
}

function eventHead(wallTimeS: number, step: number): Buffer {
  const time = Buffer.alloc(8);
  time.writeDoubleLE(wallTimeS);
  return Buffer.concat([Buffer.from(key(1, 1)), time, Buffer.from([...key(2, 0), ...varint(BigInt(step))])]);
}

/** The first event of every file: its format version, which readers check. */
export function fileVersionEvent(wallTimeS: number): Buffer {
  return Buffer.concat([eventHead(wallTimeS, 0), lengthDelimited(3, Buffer.from('brain.Event:2'))]);
}

/** One event holding a scalar summary value per tag (stored as float32, as TensorBoard's scalars are). */
export function scalarsEvent(wallTimeS: number, step: number, scalars: [string, number][]): Buffer {
  const values = scalars.map(([tag, value]) => {
    const v = Buffer.alloc(4);
    v.writeFloatLE(value);
    return lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(tag, 'utf8')), Buffer.from(key(2, 5)), v]));
  });
  return Buffer.concat([eventHead(wallTimeS, step), lengthDelimited(5, Buffer.concat(values))]);
}
