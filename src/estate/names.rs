//! Names that reach scripts and command lines (host names, SQL instance names). Shared
//! by the inventory, the windows driver and the transports, so they sit below all of them.

/// Host names: letters, digits, '-' and '.', at most 253 characters, not starting with '-'.
pub(crate) fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a host name cannot be empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "host name is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    if name.starts_with('-') {
        return Err(format!("host name `{name}` starts with '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "host name `{}` contains {:?}; only letters, digits, '-' and '.' are allowed",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

/// SQL Server instance names: letters, digits, `_` and `$`, at most 16 characters.
pub(crate) fn check_instance_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 16 {
        return Err(format!(
            "SQL instance name `{}` must be 1 to 16 characters long",
            name.escape_debug()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
    {
        return Err(format!(
            "SQL instance name `{}` contains {:?}; only letters, digits, '_' and '$' are allowed",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_instance_names_are_checked() {
        for bad in [
            "",
            "-x",
            "a b",
            "ns;rm",
            "ns'x",
            "ns`x",
            "ns$(x)",
            "ns\nx",
            &"a".repeat(254),
        ] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
        for good in ["ns-hq", "NS01.corp.example.com", "a"] {
            assert!(check_host_name(good).is_ok(), "{good:?}");
        }
        assert!(check_instance_name("SQLEXPRESS").is_ok());
        assert!(check_instance_name("MY_INST$1").is_ok());
        assert!(check_instance_name("x-y").is_err());
        assert!(check_instance_name("ABCDEFGHIJKLMNOPQ").is_err());
    }
}
