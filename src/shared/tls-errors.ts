/** Certificate verification failures (OpenSSL's X509 verify codes, as Node names them). */
const TLS_VERIFY_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * A failed TLS handshake: our verification of the upstream's certificate (a verify code, or
 * a name that does not match), or the upstream's refusal of ours (an alert, which TLS 1.3
 * delivers after the client finished its side: the request may have been written, but the
 * upstream never read it as one). Either way nothing reached the application.
 */
export function isTlsError(code: string | undefined): boolean {
  return code !== undefined && (TLS_VERIFY_ERRORS.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code.startsWith('ERR_SSL_'));
}
