# BIND 9 (the DNS cutover's real peer) and its tools: dig for independent read-backs,
# nsupdate for changes made behind lifeboat's back, tsig-keygen for per-run keys.
apt_install bind9 bind9-dnsutils
