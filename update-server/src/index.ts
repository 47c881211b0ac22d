export { AdminApiError, AdminClient, governance } from './admin-client.ts';
export { createApp, DEFAULT_RATE_LIMITS, type RateLimits } from './app.ts';
export { type BootstrapTokens, createToken, hashToken } from './auth/tokens.ts';
export { loadServerKeys, type ServerKeys } from './keys/server-keys.ts';
export { createLogger, REDACTED_PATHS } from './log.ts';
export { RegistryService } from './registry/service.ts';
export { type DashboardOptions, mountDashboard } from './routes/dashboard.ts';
export { DEFAULT_MANIFEST_TTL_MS, type RunningServer, type ServerOptions, startServer } from './server.ts';
