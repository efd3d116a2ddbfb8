# mitmproxy (mitmdump in reverse mode + tests/peers/faults.py): the fault-injecting proxy
# in front of real peers (blocked accounts, throttling, resets, hangs).
# mitmproxy pins `cryptography` below what moto needs, so it gets a virtualenv of its own;
# its mitmdump is linked into the project's virtualenv, where the tests look for programs.
mitm_venv=$root/.venv-mitmproxy
if [ ! -x "$mitm_venv/bin/mitmdump" ]; then
  echo "install.sh: pip install mitmproxy (into $mitm_venv)"
  python3 -m venv "$mitm_venv"
  "$mitm_venv/bin/pip" install -q --disable-pip-version-check mitmproxy
fi
mkdir -p "$VENV/bin"
ln -sfn "$mitm_venv/bin/mitmdump" "$VENV/bin/mitmdump"
