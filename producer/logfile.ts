// A log file for what is not for the terminal: kafkajs's own warnings and
// errors (a reconnect, a broker's refusal) are for whoever looks into a
// failure, not for the user watching a run. Lines are appended as they come
// (synchronously: in order, and none lost when the process exits).
import fs from 'node:fs';
import path from 'node:path';

/**
 * A function that appends a line, stamped with the time, to `file` (its
 * folder created). Never throws: when the file cannot be written, says so
 * once through `warn` and drops what follows.
 */
export function fileLog(file: string, warn: (line: string) => void): (line: string) => void {
  let broken = false;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch {
    // appendFileSync says why below.
  }
  return (line: string) => {
    if (broken) return;
    try {
      fs.appendFileSync(file, `${new Date().toISOString()} ${line}\n`);
    } catch (err) {
      broken = true;
      warn(`cannot write the log ${file} (${(err as Error).message}): kafkajs's messages are dropped`);
    }
  };
}
