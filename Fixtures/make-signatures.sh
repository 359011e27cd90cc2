#!/usr/bin/env bash
# Writes signatures.txt: for each fixture, its X-Kliq-Signature under the test secret, computed by
# OpenSSL's command line (outside Swift). Tests check the Swift verifier against these.
set -eu
cd "$(dirname "$0")"
secret='whsec_fixture_secret'
{
  echo "# secret: $secret"
  for f in $(ls *.json | sort); do
    sig=$(openssl dgst -sha256 -hmac "$secret" -r "$f" | cut -d' ' -f1)
    echo "$f $sig"
  done
} > signatures.txt
