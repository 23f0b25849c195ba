import { describe, expect, it } from 'vitest';
import { containerState, dockerClientEnv, dockerSockets, stackRunning } from './compose.mjs';

describe('the compose stack as the native platform sees it', () => {
  it('asks the socket DOCKER_HOST names first, then the usual ones', () => {
    expect(dockerSockets({ DOCKER_HOST: 'unix:///run/podman/podman.sock' })[0]).toBe('/run/podman/podman.sock');
    expect(dockerSockets({ DOCKER_HOST: 'tcp://10.0.0.1:2375' })).toEqual(['/var/run/docker.sock', '/run/podman/podman.sock']);
  });
  it('names container states as status names services', () => {
    expect(containerState({ State: 'running', Status: 'Up 3 minutes (healthy)' })).toBe('ready');
    expect(containerState({ State: 'running', Status: 'Up 2 seconds (health: starting)' })).toBe('starting');
    expect(containerState({ State: 'running', Status: 'Up 2 seconds (starting)' })).toBe('starting');
    expect(containerState({ State: 'running', Status: 'Up 1 minute (unhealthy)' })).toBe('unhealthy');
    expect(containerState({ State: 'exited', Status: 'Exited (0) 5 minutes ago' })).toBe('done');
    expect(containerState({ State: 'exited', Status: 'Exited (137) 5 minutes ago' })).toBe('down');
  });
  it('runs while a long-lived container is up; finished one-shots and no engine do not count', () => {
    expect(stackRunning(null)).toBe(false);
    expect(stackRunning([{ state: 'done' }, { state: 'down' }])).toBe(false);
    expect(stackRunning([{ state: 'done' }, { state: 'starting' }])).toBe(true);
  });
});

describe('the docker client environment', () => {
  it('keeps a DOCKER_HOST or Docker socket as it is, else names podman with the classic builder', () => {
    expect(dockerClientEnv({ DOCKER_HOST: 'tcp://h:2375' }, () => false)).toEqual({ DOCKER_HOST: 'tcp://h:2375' });
    expect(dockerClientEnv({}, (f) => f === '/var/run/docker.sock')).toEqual({});
    expect(dockerClientEnv({}, () => false)).toEqual({ DOCKER_HOST: 'unix:///run/podman/podman.sock', DOCKER_BUILDKIT: '0' });
  });
});
