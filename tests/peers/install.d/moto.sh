# moto's server: a real EC2 API on loopback for the aws-ec2 adapter's tests.
pip_install 'moto[server]'
