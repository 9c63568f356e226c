#!/bin/sh
# Test certificates for mutual TLS between the regions of examples/global.yaml (openssl):
# a fleet CA, and for each region's Meridian one certificate (CN and DNS name
# meridian-REGION) that serves its fleet port and identifies it when it calls the others.
#
#   sh scripts/make-fleet-certs.sh [DIR]        (default DIR: examples/certs)
#
# For tests and demos only: the keys are unencrypted and the CA's key sits beside them.
# Does nothing when DIR already holds a fleet CA valid for another day; otherwise builds
# the set in a temporary folder and moves it into place whole, so concurrent runs never
# see half a set.
set -eu
dir=${1:-examples/certs}
if [ -f "$dir/fleet-ca.crt" ] && openssl x509 -checkend 86400 -noout -in "$dir/fleet-ca.crt" >/dev/null 2>&1; then
  exit 0
fi
stale=false
[ -e "$dir" ] && stale=true
parent=$(dirname "$dir")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.fleet-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key "$tmp/fleet-ca.key"
openssl req -x509 -new -key "$tmp/fleet-ca.key" -out "$tmp/fleet-ca.crt" -days 365 -subj /CN=meridian-fleet-ca
for region in us-east eu-west ap-south; do
  key "$tmp/$region.key"
  openssl req -new -key "$tmp/$region.key" -out "$tmp/$region.csr" -subj "/CN=meridian-$region" -addext "subjectAltName=DNS:meridian-$region"
  openssl x509 -req -in "$tmp/$region.csr" -CA "$tmp/fleet-ca.crt" -CAkey "$tmp/fleet-ca.key" -CAcreateserial -days 365 -copy_extensions copy -out "$tmp/$region.crt" 2>/dev/null
  rm "$tmp/$region.csr"
done
rm -f "$tmp/fleet-ca.srl"
if $stale; then rm -rf "$dir"; fi
# rename(2) onto a folder that exists fails: a concurrent run that got there first keeps its set.
if mv -T "$tmp" "$dir" 2>/dev/null; then
  trap - EXIT
  echo "fleet certificates in $dir"
fi
