#!/usr/bin/env node
// npm run dashboard: the live dashboard on DASHBOARD_PORT (127.0.0.1), in the
// foreground until Ctrl-C; or, when `npm start` already runs it, its URL.
import { config } from '#lib/config.mjs';
import { main, UserError } from '#lib/errors.mjs';
import { createDashboard } from '../dashboard/server.mjs';

await main(async () => {
  const ping = await fetch(`${config.dashboard.url}/api/ping`, { signal: AbortSignal.timeout(2000) })
    .then((r) => r.json())
    .catch(() => null);
  if (ping?.dashboard === 'kafka-pg-pipeline') {
    console.log(`dashboard: ${config.dashboard.url} (already running)`);
    return;
  }
  const dashboard = createDashboard(config, { log: (line) => console.error(`[dashboard] ${line}`) });
  const url = await dashboard.listen().catch((err) => {
    throw new UserError(
      err.code === 'EADDRINUSE'
        ? `port ${config.dashboard.port} is taken (is a dashboard already running?): stop it, or set DASHBOARD_PORT in .env`
        : `the dashboard could not listen on ${config.dashboard.url}: ${err.message}`,
    );
  });
  console.log(`dashboard: ${url} (Ctrl-C stops it)`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void dashboard.close().then(() => process.exit(0)));
});
