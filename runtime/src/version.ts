/** The runtime's own version: releases name the minimum they need (minRuntimeVersion). */
export const RUNTIME_VERSION = '0.1.0';
