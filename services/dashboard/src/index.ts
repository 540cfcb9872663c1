export { buildDashboard, type DashboardDeps, DEFAULT_ASSETS_DIR } from './dashboard.js';
