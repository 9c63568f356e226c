/** A point on the globe in degrees: latitude -90..90 (north positive), longitude -180..180 (east positive). */
export interface GeoPoint {
  readonly lat: number;
  readonly lon: number;
}

/** The mean Earth radius (IUGG), in km. */
export const EARTH_RADIUS_KM = 6371.0088;

const RAD = Math.PI / 180;

/**
 * Great-circle distance by the haversine formula, in km, on a sphere of the mean
 * Earth radius: within about 0.5% of the ellipsoidal (geodesic) distance, far finer
 * than steering needs. Example: New York (40.7128, -74.0060) to London (51.5074,
 * -0.1278) is about 5,570 km.
 */
export function greatCircleKm(a: GeoPoint, b: GeoPoint): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2;
  // min() guards against h creeping above 1 by rounding for antipodal points.
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * `regions` ordered by distance from `location`, nearest first; regions at the same
 * distance keep their given order (the sort is stable), so ties are deterministic.
 */
export function nearestRegions<R extends { readonly location: GeoPoint }>(location: GeoPoint, regions: readonly R[]): R[] {
  return regions
    .map((r, i) => ({ r, i, d: greatCircleKm(location, r.location) }))
    .sort((x, y) => x.d - y.d || x.i - y.i)
    .map((x) => x.r);
}
