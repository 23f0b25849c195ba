// @ts-check
// One kind of error for what the user can fix, and one handler that prints it:
// a single line naming the cause and the fix, an exit code, no stack trace.
// Errors we did not foresee keep their stack: they are our bugs to see.

/** Something the user can act on. Subclasses only add a name to catch by. */
export class UserError extends Error {
  /** @param {string} message the cause and the fix, one line @param {{ exitCode?: number, cause?: unknown }} [opts] */
  constructor(message, { exitCode = 1, cause } = {}) {
    super(message, { cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** A bad command line: exit code 2, as getopt-style tools do. */
export class UsageError extends UserError {
  /** @param {string} message */
  constructor(message) {
    super(message, { exitCode: 2 });
  }
}

/** A bad value in .env or the environment. */
export class ConfigError extends UserError {}

/**
 * The line to print for an error, or null when it is not one we can name.
 * Library errors we recognise (a refused connection, PostgreSQL's codes)
 * become user errors here, in one place. Pure.
 * @param {unknown} err
 * @returns {{ message: string, exitCode: number } | null}
 */
export function explain(err) {
  const e = /** @type {Error & { code?: unknown, exitCode?: number }} */ (err);
  if (e instanceof UserError) return { message: e.message, exitCode: e.exitCode };
  if (e?.code === 'ECONNREFUSED') {
    return { message: `a service is not reachable (${e.message}): start the platform with \`npm run platform:up\``, exitCode: 1 };
  }
  if (e?.code === '28P01') {
    return {
      message: `PostgreSQL refused the password (${e.message}): check the PG_*_PASSWORD keys in .env, then \`npm run db:migrate\``,
      exitCode: 1,
    };
  }
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return { message: `PostgreSQL: ${e.message}`, exitCode: 1 };
  return null;
}

/**
 * The one top-level handler of every command: runs it, prints a user error
 * as `error: <line>` and sets the exit code; rethrows anything else.
 * @param {() => unknown} command
 */
export async function main(command) {
  // Whatever a command of ours writes (logs, checkpoints, credentials, data)
  // is its owner's only, whoever else shares the host.
  process.umask(0o077);
  try {
    await command();
  } catch (err) {
    const known = explain(err);
    if (!known) throw err;
    console.error(`error: ${known.message}`);
    process.exitCode = known.exitCode;
  }
}
