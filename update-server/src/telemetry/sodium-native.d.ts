// The part of sodium-native (no types of its own) that telemetry/signature.ts uses.
declare module 'sodium-native' {
  const sodium: {
    readonly crypto_sign_PUBLICKEYBYTES: number;
    crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  };
  export default sodium;
}
