/** The runtime's own version (the package's; version.test.ts keeps them equal): releases name the minimum they need (minRuntimeVersion). */
export const RUNTIME_VERSION = '0.2.0';
