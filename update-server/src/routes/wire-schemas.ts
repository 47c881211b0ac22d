import * as protocol from '@edgeship/protocol';
import { classic } from './classic-schema.ts';

/**
 * Protocol's wire schemas as the admin API and the OpenAPI document use them (see
 * classic-schema.ts). Named ones become components; a schema is named before the ones that
 * contain it, so they refer to it.
 */
export const Name = classic(protocol.Name);
export const SemVer = classic(protocol.SemVer);
export const Sha256Hex = classic(protocol.Sha256Hex);
export const SignedRelease = classic(protocol.SignedReleaseSchema, 'SignedRelease');
export const SignedKeySet = classic(protocol.SignedKeySetSchema, 'SignedKeySet');
export const ManifestEnvelope = classic(protocol.ManifestEnvelopeSchema, 'ManifestEnvelope');
export const TrustedRoot = classic(protocol.TrustedRootSchema, 'TrustedRoot');
export const TelemetryBatch = classic(protocol.TelemetryBatchSchema, 'TelemetryBatch');
