//! Matching, operators, variables and deny precedence, case by case.

use super::*;

#[test]
#[rustfmt::skip]
fn action_and_resource_matching() {
    // IAM User Guide, "IAM JSON policy elements: Action" (case-insensitive, * and ?) and
    // "Resource" (case-sensitive; * may span / and :).
    let policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:Get?bject", "kms:Describe*"],
         "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket/*", "arn:aws:kms:*"]}]}"#;
    check(
        policy,
        Kind::Identity,
        &[
            row("? matches one character", "s3:GetObject", OBJECT, ALICE, &[], ALLOW),
            row("action case", "S3:GETOBJECT", OBJECT, ALICE, &[], ALLOW),
            row("? needs exactly one", "s3:GetObjectTagging", OBJECT, ALICE, &[], NotApplicable),
            row("* spans colons", "kms:DescribeKey", KEY_A, ALICE, &[], ALLOW),
            row("resource case", "s3:GetObject", "arn:aws:s3:::AMZN-S3-DEMO-BUCKET/x", ALICE, &[], NotApplicable),
            row("* spans slashes", "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/a/b/c", ALICE, &[], ALLOW),
            row("the bucket itself is not bucket/*", "s3:GetObject", BUCKET, ALICE, &[], NotApplicable),
            row("no resource", "s3:GetObject", "*", ALICE, &[], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn condition_operator_semantics() {
    // IAM User Guide, "IAM JSON policy elements: Condition operators" and "Conditions with
    // multiple context keys or values" (operators AND, keys AND, values OR; NOR for negated).
    let policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "strings", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "Blue"},
                       "StringNotEquals": {"aws:RequestedRegion": ["us-west-1", "eu-west-1"]}}},
        {"Sid": "numbers", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
         "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}}},
        {"Sid": "arns", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*",
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:111122223333:trail/*"}}},
        {"Sid": "binary", "Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": "*",
         "Condition": {"BinaryEquals": {"example:blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}},
        {"Sid": "if-exists", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
         "Condition": {"StringEqualsIfExists": {"s3:x-amz-storage-class": "STANDARD_IA"}}},
        {"Sid": "unknown", "Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*",
         "Condition": {"StringSortOf": {"aws:username": "alice"}}}
    ]}"#;
    const TEAM: &str = "aws:PrincipalTag/team";
    const REGION: &str = "aws:RequestedRegion";
    check(
        policy,
        Kind::Identity,
        &[
            row("ignore case + NOR: allowed", "s3:GetObject", OBJECT, ALICE, &[(TEAM, &["BLUE"]), (REGION, &["us-east-1"])], ALLOW),
            row("NOR: one listed value matches", "s3:GetObject", OBJECT, ALICE, &[(TEAM, &["blue"]), (REGION, &["eu-west-1"])], NotApplicable),
            row("keys AND: one missing", "s3:GetObject", OBJECT, ALICE, &[(REGION, &["us-east-1"])], NotApplicable),
            row("max-keys under", "s3:ListBucket", BUCKET, ALICE, &[("s3:max-keys", &["7"])], ALLOW),
            row("max-keys equal", "s3:ListBucket", BUCKET, ALICE, &[("s3:max-keys", &["10.0"])], ALLOW),
            row("max-keys over", "s3:ListBucket", BUCKET, ALICE, &[("s3:max-keys", &["1000"])], NotApplicable),
            row("max-keys not a number", "s3:ListBucket", BUCKET, ALICE, &[("s3:max-keys", &["1e1"])], NotApplicable),
            row("ArnLike: each part globbed", "sns:Publish", "*", ALICE, &[( "aws:SourceArn", &["arn:aws:cloudtrail:us-east-1:111122223333:trail/main"], )], ALLOW),
            row("ArnLike: other account", "sns:Publish", "*", ALICE, &[( "aws:SourceArn", &["arn:aws:cloudtrail:us-east-1:444455556666:trail/main"], )], NotApplicable),
            row("ArnLike: * stays within its part", "sns:Publish", "*", ALICE, &[( "aws:SourceArn", &["arn:aws:cloudtrail:us-east-1:x:111122223333:trail/main"], )], NotApplicable),
            row("BinaryEquals", "s3:PutObjectTagging", "*", ALICE, &[("example:blob", &["QmluYXJ5VmFsdWVJbkJhc2U2NA"])], ALLOW),
            row("BinaryEquals: other bytes", "s3:PutObjectTagging", "*", ALICE, &[("example:blob", &["QmluYXJ5"])], NotApplicable),
            row("IfExists: absent", "s3:PutObject", OBJECT, ALICE, &[], ALLOW),
            row("IfExists: present and equal", "s3:PutObject", OBJECT, ALICE, &[("s3:x-amz-storage-class", &["STANDARD_IA"])], ALLOW),
            row("IfExists: present and different", "s3:PutObject", OBJECT, ALICE, &[("s3:x-amz-storage-class", &["GLACIER"])], NotApplicable),
            row("unknown operator never matches", "s3:DeleteObject", OBJECT, ALICE, &[], NotApplicable),
        ],
    );
    // An unknown operator makes a Deny statement not match either (the choice documented in
    // conditions.rs: AWS refuses such policies when they are stored).
    let deny = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*",
        "Resource": "*", "Condition": {"StringSortOf": {"aws:username": "alice"}}}}"#;
    check(
        deny,
        Kind::Identity,
        &[row("unknown operator in a Deny", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable)],
    );
    // A negated operator holds on an absent key; so does any operator with IfExists.
    let negated = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"ArnNotEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/main"}}},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*",
         "Condition": {"NumericNotEqualsIfExists": {"s3:max-keys": "5"}}}]}"#;
    check(
        negated,
        Kind::Identity,
        &[
            row("ArnNotEquals: key absent", "s3:GetObject", OBJECT, ALICE, &[], ExplicitDeny),
            row("ArnNotEquals: equal", "s3:GetObject", OBJECT, ALICE, &[( "aws:SourceArn", &["arn:aws:cloudtrail:us-east-1:111122223333:trail/main"], )], NotApplicable),
            row("NumericNotEqualsIfExists: absent", "s3:PutObject", OBJECT, ALICE, &[], ExplicitDeny),
            row("NumericNotEqualsIfExists: different", "s3:PutObject", OBJECT, ALICE, &[("s3:max-keys", &["6"])], ExplicitDeny),
            row("NumericNotEqualsIfExists: equal", "s3:PutObject", OBJECT, ALICE, &[("s3:max-keys", &["5"])], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn policy_variable_forms() {
    // IAM User Guide, "IAM policy elements: Variables and tags": special characters ${*},
    // ${?}, ${$}; default values; aws:PrincipalAccount; variables in condition values.
    let policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/${*}${?}${$}/*"},
        {"Effect": "Allow", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/${aws:PrincipalTag/team, 'company-wide'}/*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*",
         "Condition": {"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team}/"}}}
    ]}"#;
    const TEAM: &str = "aws:PrincipalTag/team";
    check(
        policy,
        Kind::Identity,
        &[
            row("escapes are literal", "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/*?$/x", ALICE, &[], ALLOW),
            row("escapes are not wildcards", "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/ab$/x", ALICE, &[], NotApplicable),
            row("default when absent", "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket/company-wide/x", ALICE, &[], ALLOW),
            row("value when present", "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket/blue/x", ALICE, &[(TEAM, &["blue"])], ALLOW),
            row("default not used when present", "s3:PutObject", "arn:aws:s3:::amzn-s3-demo-bucket/company-wide/x", ALICE, &[(TEAM, &["blue"])], NotApplicable),
            row("own account's keys", "kms:Decrypt", KEY_A, ALICE, &[], ALLOW),
            row("another account's keys", "kms:Decrypt", "arn:aws:kms:us-east-1:444455556666:key/k", ALICE, &[], NotApplicable),
            row("variable in a condition value", "s3:ListBucket", BUCKET, ALICE, &[(TEAM, &["blue"]), ("s3:prefix", &["blue/"])], ALLOW),
            row("unresolved variable in a condition", "s3:ListBucket", BUCKET, ALICE, &[("s3:prefix", &["/"])], NotApplicable),
            row("multivalued keys are not variables", "s3:ListBucket", BUCKET, ALICE, &[(TEAM, &["blue", "red"]), ("s3:prefix", &["blue/"])], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn explicit_deny_wins_within_a_document() {
    // IAM User Guide, "Policy evaluation logic": an explicit deny in any statement overrides
    // any allow, whatever the statement order.
    let policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:DeleteBucket", "Resource": "*"}]}"#;
    check(
        policy,
        Kind::Identity,
        &[
            row("allowed", "s3:GetObject", OBJECT, ALICE, &[], ALLOW),
            row("denied despite two allows", "s3:DeleteBucket", BUCKET, ALICE, &[], ExplicitDeny),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn glob_handles_backtracking_and_edges() {
    use matching::{glob, tokens};
    let m = |p: &str, t: &str| glob(&tokens(p, true), t);
    assert!(m("*", ""));
    assert!(m("", ""));
    assert!(!m("", "a"));
    assert!(m("a*b*c", "aXbYbZc"));
    assert!(!m("a*b*c", "aXbYbZ"));
    assert!(m("*a*a*a*", "aaa"));
    assert!(!m("*a*a*a*b", &"a".repeat(200)));
    assert!(m("?é?", "aéb"));
    assert!(m("**", "x"));
}
