/** The config module's public surface: schema and types, validation, loading. */
export { formatDuration, parseDuration } from './duration.js';
export { allowedKeysAt, configErrorMap, formatIssues, formatPath } from './issues.js';
export { describeValue, listValues } from './describe.js';
export { ALWAYS, type Ctx, decimal, duration, fail, hasReusePort, healthThresholds, integer, percentNumber, REUSE_PORT } from './fields.js';
export { type ConfigFormat, formatOf, type LoadResult, loadConfigFile, type ParseOptions, parseConfigText } from './load.js';
export {
  type AdminConfig,
  type NodeConfig,
  type SampleBackendConfig,
  clusterEndpoints,
  type ClusterConfig,
  type Config,
  type ConfigInput,
  ConfigSchema,
  type DiscoveryConfig,
  type EndpointConfig,
  type HashKey,
  type HeaderMatch,
  type HealthCheckConfig,
  type HttpListenerConfig,
  type ListenerConfig,
  type LocalityConfig,
  type OutlierDetectionConfig,
  type RateLimitConfig,
  type SyncConfig,
  type PathMatch,
  POLICIES,
  DEFAULT_RETRY_ON,
  circuitBreakerSchema,
  outlierSchema,
  retryBudgetSchema,
  retryOnSchema,
  slowStartSchema,
  type SlowStartConfig,
  type RetryOn,
  type RouteConfig,
  type TcpListenerConfig,
  type UpstreamTlsConfig,
} from './schema.js';
export { dnsName, type DnsConfig, type GlobalConfig, globalSchema, type HostnameConfig, type RegionConfig, type RegionHealthCheckConfig } from './global-schema.js';
export { type ValidateOptions, type ValidationResult, validateConfig } from './validate.js';
export { buildCluster, coreClusterOptions, coreEndpoints, coreHashKey, coreOutlierOptions, coreRetryRules, coreSlowStart } from './to-core.js';
export {
  adaptiveConcurrencySchema,
  type AdaptiveConcurrencyConfig,
  coreHedgeOptions,
  coreOverloadOptions,
  hedgeSchema,
  type HedgeConfig,
  prioritySchema,
} from './overload.js';
