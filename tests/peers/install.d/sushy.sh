# sushy-tools' Redfish emulator (fake driver, no libvirt) is the bare-metal adapter's BMC
# in tests. Basic auth reads a bcrypt htpasswd file, which needs the `bcrypt` module;
# openssl makes the test TLS certificate.
apt_install openssl
pip_install sushy-tools bcrypt
