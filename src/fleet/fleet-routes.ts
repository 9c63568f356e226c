import { type AdminRoute, send, sendJson } from '../admin/server.js';
import type { ReloadResult } from '../admin/types.js';
import type { Fleet } from './fleet.js';
import { FLEET_PAGE } from './fleet-page.js';

/**
 * The admin API's fleet routes: the member list (JSON, and as a page), and a reload announced to every node
 * (each re-reads its own config file; a node whose file is invalid keeps its config and
 * logs why, as a local reload does).
 */
export function fleetRoutes(fleet: Fleet, reload: () => Promise<ReloadResult>): AdminRoute[] {
  return [
    { path: ['api', 'fleet'], get: ({ res }) => sendJson(res, 200, fleet.view()) },
    { path: ['fleet'], get: ({ res }) => send(res, 200, FLEET_PAGE, 'text/html; charset=utf-8') },
    {
      path: ['api', 'fleet', 'reload'],
      post: async ({ res }) => {
        const here = await reload();
        const announced = await fleet.announceReload();
        sendJson(res, here.ok ? 200 : 422, { ...here, announced });
      },
    },
  ];
}
