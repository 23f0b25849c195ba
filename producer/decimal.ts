// Parquet DECIMAL columns as numbers. hyparquet scales a DECIMAL only when
// the legacy converted type says so; a column that carries only the logical
// type (as the format has allowed since 2017) came out as its unscaled
// integer, 10^scale too large, and a BYTE_ARRAY one as text. So the reader
// asks hyparquet for the raw values of every DECIMAL column and scales them
// here, whichever annotation the writer used. Pure.
import type { SchemaElement } from 'hyparquet';

const PHYSICAL = ['INT32', 'INT64', 'FIXED_LEN_BYTE_ARRAY', 'BYTE_ARRAY'];

/**
 * The scale of a DECIMAL column; null when the column is no DECIMAL; a
 * phrase saying why when it is one that cannot be read (the caller names
 * the column). The logical type wins over the converted type, as the format
 * says it does.
 */
export function decimalScale(el: SchemaElement): number | null | string {
  const logical = el.logical_type?.type === 'DECIMAL' ? el.logical_type : undefined;
  if (!logical && el.converted_type !== 'DECIMAL') return null;
  const scale = logical ? logical.scale : (el.scale ?? 0);
  const precision = logical ? logical.precision : el.precision;
  const shown = `DECIMAL(${precision ?? '?'},${scale ?? '?'})`;
  if (!PHYSICAL.includes(el.type ?? '')) return `is ${shown} stored as ${el.type}, which Parquet does not allow: write it as DOUBLE`;
  if (!Number.isInteger(scale) || scale < 0 || (precision !== undefined && scale > precision)) {
    return `is ${shown}, whose scale is not between 0 and its precision: write it as DOUBLE`;
  }
  return scale;
}

/** A big-endian two's complement integer, as FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY decimals hold it. */
export function unscaledOf(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return bytes.length > 0 && bytes[0] & 0x80 ? value - (1n << BigInt(bytes.length * 8)) : value;
}

/**
 * An unscaled value (INT32 as a number, INT64 as a bigint, the byte arrays
 * as bytes) divided by 10^scale. The decimal text is parsed, not multiplied
 * by 10^-scale: that rounds twice (115 * 10 ** -2 is 1.1500000000000001), the
 * text gives the double nearest the decimal, as a DOUBLE column would hold.
 * With scale 0 an integer stays exact (a bigint past 2^53): ids stay ids.
 */
export function decimalValue(unscaled: number | bigint | Uint8Array, scale: number): number | bigint {
  const value = unscaled instanceof Uint8Array ? unscaledOf(unscaled) : unscaled;
  if (scale === 0) return value;
  return Number(`${value}e-${scale}`);
}

/** A page of raw DECIMAL values, scaled; nulls stay null. */
export function scaleDecimals(values: ArrayLike<unknown>, scale: number): unknown[] {
  return Array.from(values, (v) => (v == null ? v : decimalValue(v as number | bigint | Uint8Array, scale)));
}
