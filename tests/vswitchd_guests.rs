//! vswitchd with real QEMU guests over vhost-user (placeholder replaced below).
