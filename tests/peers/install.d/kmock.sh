# kmock: a stateful Kubernetes API emulator (Python), the peer of the Kubernetes
# adapter's tests. tests/peers/kmock_server.py serves it on loopback.
pip_install kmock
