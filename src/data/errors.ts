// Errors of the training data: every one names the file and, for a row's fault, the row (JSONL: the
// line number; Parquet: the row number, both counted from 1), so a user can open the file there.

export interface RowLocation {
  file: string;
  /** 1-based line (JSONL) or row (Parquet). */
  row: number;
}

export class DataError extends Error {
  override name = 'DataError';
  constructor(
    message: string,
    readonly file?: string,
    readonly row?: number,
  ) {
    super(message);
  }

  static at(where: RowLocation, why: string): DataError {
    return new DataError(`${formatLocation(where)}: ${why}`, where.file, where.row);
  }
}

/** "file:line" for JSONL (what editors accept), "file: row N" for Parquet and Arrow. */
export function formatLocation(where: RowLocation): string {
  return /\.(parquet|arrow)$/.test(where.file) ? `${where.file}: row ${where.row}` : `${where.file}:${where.row}`;
}
