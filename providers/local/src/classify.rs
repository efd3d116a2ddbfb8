//! The local provider's classifier: what an operating-system error means to the
//! controller. The "vendor" here is this host, so its error codes are `errno` values.

use std::io;

use lifeboat_provider::ErrorClass;

/// The class of an I/O error met while starting a process or keeping its records.
///
/// A program that does not exist or may not be executed cannot start however often it
/// is retried (`InvalidRequest`); a full disk or a process table at its limit is this
/// host running out of room (`CapacityExhausted`); the rest is unexpected (`Internal`).
pub fn classify_io(error: &io::Error) -> ErrorClass {
    use nix::libc;
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => ErrorClass::InvalidRequest,
        _ => match error.raw_os_error() {
            Some(libc::ENOEXEC | libc::ENOTDIR | libc::ELOOP | libc::E2BIG) => {
                ErrorClass::InvalidRequest
            }
            Some(libc::ENOSPC | libc::EDQUOT | libc::EAGAIN | libc::ENOMEM | libc::EMFILE) => {
                ErrorClass::CapacityExhausted
            }
            Some(libc::EROFS | libc::EIO) => ErrorClass::Unavailable,
            _ => ErrorClass::Internal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    #[test]
    fn errno_table() {
        let table = [
            (libc::ENOENT, ErrorClass::InvalidRequest),
            (libc::EACCES, ErrorClass::InvalidRequest),
            (libc::EPERM, ErrorClass::InvalidRequest),
            (libc::ENOEXEC, ErrorClass::InvalidRequest),
            (libc::ENOTDIR, ErrorClass::InvalidRequest),
            (libc::E2BIG, ErrorClass::InvalidRequest),
            (libc::ENOSPC, ErrorClass::CapacityExhausted),
            (libc::EDQUOT, ErrorClass::CapacityExhausted),
            (libc::EAGAIN, ErrorClass::CapacityExhausted),
            (libc::ENOMEM, ErrorClass::CapacityExhausted),
            (libc::EMFILE, ErrorClass::CapacityExhausted),
            (libc::EROFS, ErrorClass::Unavailable),
            (libc::EIO, ErrorClass::Unavailable),
            (libc::EINVAL, ErrorClass::Internal),
        ];
        for (errno, class) in table {
            assert_eq!(
                classify_io(&io::Error::from_raw_os_error(errno)),
                class,
                "errno {errno}"
            );
        }
        assert_eq!(
            classify_io(&io::Error::other("something")),
            ErrorClass::Internal
        );
    }
}
