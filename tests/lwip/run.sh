#!/usr/bin/env bash
# The library on real lwIP (Debian's liblwip-dev 2.1.3), in one process:
# builds libnopoll.a, the lwIP socket table and stack bring-up
# (c-examples/lwip/) and lwip-demo, then runs the demo: our C API server
# and clients over lwIP's in-process loopback (no root, no kernel socket,
# nothing leaves lwIP).
#
#   tests/lwip/run.sh
#
# Variants (LWIP_VARIANTS, default "std nostd"):
#   std    target/release/libnopoll.a (+ -lpthread -ldl -lm)
#   nostd  cargo build --release --no-default-features (target/nostd): what
#          firmware links, libc and lwIP only. Skipped with a message while
#          that build has no C API (no nopoll_install_socket_ops symbol).
# Environment: CARGO, CC, CARGO_TARGET_DIR, LWIP_DEMO_TIMEOUT (seconds,
# default 120: the demo's own alarm; the run is killed 30 s later).
# Needs: apt-get install liblwip-dev pkg-config. Exit status 0 only when
# every variant that ran passed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CARGO="${CARGO:-cargo}"
LIMIT="${LWIP_DEMO_TIMEOUT:-120}"

if ! pkg-config --exists lwip 2>/dev/null || [ ! -f /usr/include/lwip/lwip/sockets.h ]; then
  echo "lwip: FAIL: Debian's liblwip-dev is not installed (apt-get install -y liblwip-dev pkg-config)"
  exit 1
fi

# wss:// over lwIP too when Debian's libmbedtls-dev is there: the demo is
# built with the mbedTLS table (c-examples/tls/nopoll_mbedtls.c) and gets a
# CA and a certificate for localhost made here.
mbedtls=0
if [ -f /usr/include/mbedtls/ssl.h ] && command -v openssl >/dev/null; then
  tlsdir="$TARGET/lwip/tls"
  mkdir -p "$tlsdir"
  if ( cd "$tlsdir" && set -e
       openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=lwip-test-ca \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
       openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost
       printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
       openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
     ) > "$tlsdir/gen.log" 2>&1; then
    mbedtls=1
    export NOPOLL_LWIP_TLS_DIR="$tlsdir"
  else
    cat "$tlsdir/gen.log"; echo "lwip: cannot make the test certificates"; exit 1
  fi
else
  echo "lwip: libmbedtls-dev or openssl missing: wss:// over lwIP SKIPPED (apt-get install libmbedtls-dev)"
fi

rc=0
ran=0
for variant in ${LWIP_VARIANTS:-std nostd}; do
  case "$variant" in
    std)
      timeout 1800 "$CARGO" build --release --quiet
      lib="$TARGET/release/libnopoll.a"
      libs="-lssl -lcrypto -lpthread -ldl -lm"
      ;;
    nostd)
      timeout 1800 "$CARGO" build --release --quiet --no-default-features --target-dir "$TARGET/nostd"
      lib="$TARGET/nostd/release/libnopoll.a"
      libs=""
      # readelf, not nm: the archive's objects carry LLVM bitcode that the
      # system's binutils plugin cannot read, and nm then lists nothing
      if ! readelf -sW "$lib" 2>/dev/null | awk '$7 != "UND" && $8 == "nopoll_install_socket_ops" { f = 1 } END { exit !f }'; then
        echo "lwip[nostd]: SKIP: $lib has no C API yet (no nopoll_install_socket_ops)"
        continue
      fi
      ;;
    *) echo "lwip: unknown variant $variant"; exit 2 ;;
  esac
  out="$TARGET/lwip/$variant"
  echo "lwip[$variant]: building the demo against $lib"
  make --no-print-directory -s -C c-examples/lwip CC="${CC:-cc}" ROOT="$ROOT" \
    LIBNOPOLL="$lib" LIBNOPOLL_LIBS="$libs" OUT="$out" MBEDTLS="$mbedtls"
  echo "lwip[$variant]: running $out/lwip-demo (limit ${LIMIT}s)"
  ran=$((ran + 1))
  set +e
  if [ "$variant" = nostd ]; then export NOPOLL_LWIP_DEMO_EXPECT_MUTEX=1; else unset NOPOLL_LWIP_DEMO_EXPECT_MUTEX; fi
  timeout -k 5 $((LIMIT + 30)) "$out/lwip-demo" "$LIMIT"
  r=$?
  set -e
  if [ "$r" != 0 ]; then
    echo "lwip[$variant]: FAIL (exit $r)"
    rc=1
  else
    echo "lwip[$variant]: PASS"
  fi
done
[ "$ran" -gt 0 ] || { echo "lwip: no variant ran"; exit 1; }
exit "$rc"
