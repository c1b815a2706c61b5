# Sourced by run.sh and instructions.sh (from the repository root, with B,
# CARGO and CC set): builds, in release, our library, our two echo servers
# (C API: $B/echo-listener; Rust API: target/release/examples/echo_server),
# the C echo written with upstream's flush loop ($B/upstream-flush-echo),
# the raw TCP echo ($B/raw-echo) and the load generator.
$CARGO build --release --quiet
$CARGO build --release --quiet --example echo_server
$CC -ansi -Wall -Werror -Wstrict-prototypes -O2 -Iinclude -o $B/echo-listener c-examples/echo-listener.c \
	target/release/libnopoll.a -lssl -lcrypto -lpthread -ldl -lm -lrt -lutil
$CC -ansi -Wall -Werror -Wstrict-prototypes -O2 -Iinclude -DECHO_UPSTREAM_FLUSH -o $B/upstream-flush-echo c-examples/echo-listener.c \
	target/release/libnopoll.a -lssl -lcrypto -lpthread -ldl -lm -lrt -lutil
$CC -O2 -Wall -Werror -o $B/raw-echo benches/servers/raw-echo.c
(cd benches/loadgen && $CARGO build --release --quiet)
