# OpenSSH: sshd is the bare-metal adapter's "host" in tests; the client tools make the
# test keys (ssh-keygen). sshd refuses to start without its privilege-separation folder.
apt_install openssh-server openssh-client
if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; fi
