//! Kubernetes resource quantities (`3800m`, `16374584Ki`, `1.5Gi`, `2e3`) as numbers.
//! Pure.

/// The value of a quantity in its base unit (cores, bytes, pods); `None` when it is not
/// a quantity.
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let value = number * factor;
    value.is_finite().then_some(value)
}

/// Cores as millicores (rounded down, never negative).
pub fn cpu_millis(cores: f64) -> u64 {
    (cores * 1000.0).max(0.0) as u64
}

/// Bytes as MiB (rounded down, never negative).
pub fn memory_mib(bytes: f64) -> u64 {
    (bytes / 1024f64.powi(2)).max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantities_as_nodes_report_them() {
        assert_eq!(parse("3800m").map(cpu_millis), Some(3800));
        assert_eq!(parse("4").map(cpu_millis), Some(4000));
        assert_eq!(parse("0.5").map(cpu_millis), Some(500));
        assert_eq!(parse("16374584Ki").map(memory_mib), Some(15990));
        assert_eq!(parse("1Gi").map(memory_mib), Some(1024));
        assert_eq!(parse("2e3"), Some(2000.0));
        assert_eq!(parse("1G"), Some(1e9));
        assert_eq!(parse("110"), Some(110.0));
        for bad in ["", "Gi", "12Q", "1e", "abc", "1.2.3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,24}") {
            let _ = parse(&text).map(cpu_millis);
        }

        #[test]
        fn mebibytes_read_back(mib in 0u64..1 << 40) {
            prop_assert_eq!(parse(&format!("{mib}Mi")).map(memory_mib), Some(mib));
        }
    }
}
