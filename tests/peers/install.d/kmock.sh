# kmock: a stateful Kubernetes API emulator (Python), the peer of the Kubernetes
# adapter's tests. tests/peers/kmock_server.py serves it on loopback; it extends the
# emulator's internals, hence the pinned version.
pip_install 'kmock==0.8'
