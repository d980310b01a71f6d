#!/usr/bin/env bash
# Vendor GraphiQL's browser bundle into api/static/graphiql/ (served by the API, so GraphiQL
# works offline). The same files, byte for byte, as Strawberry's GraphiQL page loads from a CDN:
# each is checked against the sha384 that page pins, and the page keeps them as SRI hashes.
# Run it to refresh the files after changing the versions below (and the hashes with them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=api/static/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent graphiql@3.8.3 react@18.2.0 react-dom@18.2.0 \
  @graphiql/plugin-explorer@1.0.2 >/dev/null)
for tgz in "$work"/*.tgz; do
  mkdir -p "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"
done
copy() {  # package file → destination, checked against its sha384
  local from="$work/$1/package/$2" to="$out/$3" want="$4"
  mkdir -p "$(dirname "$to")"
  cp "$from" "$to"
  got="sha384-$(openssl dgst -sha384 -binary "$to" | base64 -w0)"
  [ "$got" = "$want" ] || { echo "$to: $got, expected $want" >&2; exit 1; }
}
copy graphiql-3.8.3 graphiql.min.js graphiql-3.8.3/graphiql.min.js \
  sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie
copy graphiql-3.8.3 graphiql.min.css graphiql-3.8.3/graphiql.min.css \
  sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM
copy react-18.2.0 umd/react.production.min.js react-18.2.0/react.production.min.js \
  sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8
copy react-dom-18.2.0 umd/react-dom.production.min.js react-dom-18.2.0/react-dom.production.min.js \
  sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh
copy graphiql-plugin-explorer-1.0.2 dist/index.umd.js plugin-explorer-1.0.2/index.umd.js \
  sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9
copy graphiql-plugin-explorer-1.0.2 dist/style.css plugin-explorer-1.0.2/style.css \
  sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi
# licences, kept beside the code they cover (the explorer plugin ships in GraphiQL's monorepo
# under the same MIT licence but without a copy of it in its package)
cp "$work/graphiql-3.8.3/package/LICENSE" "$out/graphiql-3.8.3/LICENSE"
cp "$work/graphiql-3.8.3/package/LICENSE" "$out/plugin-explorer-1.0.2/LICENSE"
cp "$work/react-18.2.0/package/LICENSE" "$out/react-18.2.0/LICENSE"
cp "$work/react-dom-18.2.0/package/LICENSE" "$out/react-dom-18.2.0/LICENSE"
echo "vendored into $out"
