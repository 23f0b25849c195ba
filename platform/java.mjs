// @ts-check
// Finding the tools the platform runs on: Java for Kafka and Connect (17+),
// Java for Apicurio (21+), and any command we need to be installed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';
import { readText } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * Runs `cmd args` and returns its output; a command that is not there fails with `message`.
 * @param {string} cmd @param {string[]} args @param {string} message
 */
export function requireCommand(cmd, args, message) {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.error) throw new UserError(message);
  return `${res.stdout}${res.stderr}`;
}

/**
 * Parses `java -version` output (which goes to stderr) into a major version.
 * @param {string} text
 */
export function javaMajor(text) {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return null;
  const major = Number(match[1]);
  // Java 8 and older report "1.8.0_x".
  return major === 1 ? Number(match[2]) : major;
}

/**
 * Picks the newest JDK at least `min` from a list of { home, release } where
 * release is the text of the JDK's `release` file.
 * @param {{ home: string, release: string }[]} jdks @param {number} min
 */
export function pickJdk(jdks, min) {
  return jdks
    .map(({ home, release }) => ({ home, major: Number(/JAVA_VERSION="(\d+)/.exec(release)?.[1] ?? 0) }))
    .filter((jdk) => jdk.major >= min)
    .sort((a, b) => b.major - a.major)[0];
}

/** The java for Kafka and Connect: $JAVA_HOME's, else the one on PATH. @param {number} min */
export function requireJava(min) {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const out = requireCommand(
    java,
    ['-version'],
    `Java is not installed: run \`apt-get install -y openjdk-${min}-jdk-headless\` (Java ${min} or newer), then run again`,
  );
  const major = javaMajor(out);
  if (major === null || major < min) {
    throw new UserError(
      `Java ${major ?? '?'} at ${java} is too old: Kafka ${min < 21 ? '4' : ''} needs Java ${min}+; install openjdk-${min}-jdk-headless or point JAVA_HOME at a newer JDK`,
    );
  }
  return java;
}

/** Apicurio Registry 3.3 is built for Java 21. @param {Config} config */
export function registryJava(config) {
  if (config.registry.javaHome) {
    const java = path.join(config.registry.javaHome, 'bin', 'java');
    const major = javaMajor(
      requireCommand(java, ['-version'], `REGISTRY_JAVA_HOME=${config.registry.javaHome} has no bin/java: fix it in .env`),
    );
    if ((major ?? 0) < 21) throw new UserError(`REGISTRY_JAVA_HOME points at Java ${major}: Apicurio Registry 3.3 needs Java 21+`);
    return java;
  }
  const base = '/usr/lib/jvm';
  const jdks = (fs.existsSync(base) ? fs.readdirSync(base) : [])
    .map((name) => ({ home: path.join(base, name), release: readText(path.join(base, name, 'release')) ?? '' }))
    .filter((jdk) => jdk.release && fs.existsSync(path.join(jdk.home, 'bin', 'java')));
  const jdk = pickJdk(jdks, 21);
  if (!jdk) {
    const onPath = javaMajor(requireCommand('java', ['-version'], 'Java is not installed'));
    if ((onPath ?? 0) >= 21) return 'java';
    throw new UserError(
      'Apicurio Registry 3.3 needs Java 21 or newer and none was found in /usr/lib/jvm: install one (e.g. Temurin 21) and set REGISTRY_JAVA_HOME in .env',
    );
  }
  return path.join(jdk.home, 'bin', 'java');
}
