//! AWS's documented policy examples, as tables.

use super::*;

// IAM User Guide, "IAM identity-based policy examples: Amazon S3: Allows IAM users access to
// their S3 home directory, programmatically and in the console", and "IAM policy elements:
// Variables and tags" (${aws:username}).
const HOME_DIRECTORY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowListingOfUserFolder", "Effect": "Allow", "Action": "s3:ListBucket",
     "Resource": "arn:aws:s3:::amzn-s3-demo-bucket",
     "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "home/${aws:username}"]}}},
    {"Sid": "AllowAllS3ActionsInUserFolder", "Effect": "Allow", "Action": "s3:*",
     "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}
  ]
}"#;

#[test]
#[rustfmt::skip]
fn home_directory_policy_scopes_each_user_to_their_prefix() {
    let own = "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/notes.txt";
    let other = "arn:aws:s3:::amzn-s3-demo-bucket/home/bob/notes.txt";
    check(
        HOME_DIRECTORY,
        Kind::Identity,
        &[
            row("list own folder", "s3:ListBucket", BUCKET, ALICE, &[("s3:prefix", &["home/alice/photos/"])], ALLOW),
            row("list own folder itself", "s3:ListBucket", BUCKET, ALICE, &[("s3:prefix", &["home/alice"])], ALLOW),
            row("list another user's folder", "s3:ListBucket", BUCKET, ALICE, &[("s3:prefix", &["home/bob/"])], NotApplicable),
            row("list without a prefix", "s3:ListBucket", BUCKET, ALICE, &[], NotApplicable),
            row("read own object", "s3:GetObject", own, ALICE, &[], ALLOW),
            row("read another user's object", "s3:GetObject", other, ALICE, &[], NotApplicable),
            // The root user has no aws:username, so the variable does not resolve.
            row("no username, no match", "s3:GetObject", own, ROOT_A, &[], NotApplicable),
            // A variable's value is literal text, never a wildcard (AWS: use ${*} for a literal *).
            row("variable value is literal", "s3:GetObject", other, ALICE, &[("aws:username", &["*"])], NotApplicable),
            row("context username wins", "s3:GetObject", other, ALICE, &[("aws:username", &["bob"])], ALLOW),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn variables_are_literal_text_in_2008_documents() {
    // "IAM JSON policy elements: Version": policy variables are not recognised in 2008-10-17
    // (or Version-less) documents; ${aws:username} is then plain text.
    let old = HOME_DIRECTORY.replace("\"Version\": \"2012-10-17\",", "");
    let literal = "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/x";
    check(
        &old,
        Kind::Identity,
        &[
            row("no substitution", "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/x", ALICE, &[], NotApplicable),
            row("literal text matches", "s3:GetObject", literal, ALICE, &[], ALLOW),
        ],
    );
}

// Amazon S3 User Guide, "Requiring server-side encryption" / "Specifying server-side
// encryption with AWS KMS": the DenyIncorrectEncryptionHeader + DenyUnEncryptedObjectUploads
// bucket policy.
const REQUIRE_SSE_KMS: &str = r#"{
  "Version": "2012-10-17",
  "Id": "PutObjectPolicy",
  "Statement": [
    {"Sid": "DenyIncorrectEncryptionHeader", "Effect": "Deny", "Principal": "*",
     "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
     "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    {"Sid": "DenyUnEncryptedObjectUploads", "Effect": "Deny", "Principal": "*",
     "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
     "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}
  ]
}"#;

#[test]
#[rustfmt::skip]
fn unencrypted_uploads_are_denied() {
    const SSE: &str = "s3:x-amz-server-side-encryption";
    check(
        REQUIRE_SSE_KMS,
        Kind::Resource,
        &[
            row("aws:kms header", "s3:PutObject", OBJECT, ALICE, &[(SSE, &["aws:kms"])], NotApplicable),
            row("AES256 header", "s3:PutObject", OBJECT, ALICE, &[(SSE, &["AES256"])], ExplicitDeny),
            row("no header", "s3:PutObject", OBJECT, ALICE, &[], ExplicitDeny),
            row("reads are untouched", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable),
            row("other bucket", "s3:PutObject", "arn:aws:s3:::other/x", ALICE, &[], NotApplicable),
        ],
    );
    // Each statement alone. Null "true" holds only when the key is absent; StringNotEquals on
    // an absent key is true ("Condition operators", Important box: negated operators are true
    // when the key is missing).
    let null_only = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}}"#;
    check(
        null_only,
        Kind::Resource,
        &[
            row("Null: header absent", "s3:PutObject", OBJECT, ALICE, &[], ExplicitDeny),
            row("Null: header present", "s3:PutObject", OBJECT, ALICE, &[(SSE, &["AES256"])], NotApplicable),
        ],
    );
    let not_equals_only = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny",
        "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}}"#;
    check(
        not_equals_only,
        Kind::Resource,
        &[row("StringNotEquals: header absent", "s3:PutObject", OBJECT, ALICE, &[], ExplicitDeny)],
    );
    // Together with an identity policy that allows uploads.
    check_decide(
        Some(REQUIRE_SSE_KMS),
        Some("111122223333"),
        &[
            call("encrypted upload", ALICE, &[ALLOW_S3_ALL], "s3:PutObject", OBJECT, &[(SSE, &["aws:kms"])], None),
            call("plain upload", ALICE, &[ALLOW_S3_ALL], "s3:PutObject", OBJECT, &[], Some("explicit deny in a resource-based policy")),
            call("root is denied too", ROOT_A, &[], "s3:PutObject", OBJECT, &[], Some("explicit deny in a resource-based policy")),
        ],
    );
}

const ALLOW_S3_ALL: &str = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
    "Action": "s3:*", "Resource": "*"}}"#;

#[test]
#[rustfmt::skip]
fn source_ip_allow_list_with_exceptions() {
    // Amazon S3 User Guide, "Examples of Amazon S3 bucket policies: Managing access based on
    // specific IP addresses" (the IPv4 + IPv6 "AllowIPmix" example); the IPv4 exception is ours.
    let policy = r#"{
      "Id": "PolicyId2", "Version": "2012-10-17",
      "Statement": [{"Sid": "AllowIPmix", "Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
        "Condition": {
          "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:DB8:1234:5678::/64"]},
          "NotIpAddress": {"aws:SourceIp": ["192.0.2.188/32", "2001:DB8:1234:5678:ABCD::/80"]}}}]
    }"#;
    const IP: &str = "aws:SourceIp";
    check(
        policy,
        Kind::Resource,
        &[
            row("inside the IPv4 range", "s3:GetObject", OBJECT, ALICE, &[(IP, &["192.0.2.10"])], ALLOW),
            row("IPv4 exception", "s3:GetObject", OBJECT, ALICE, &[(IP, &["192.0.2.188"])], NotApplicable),
            row("inside the IPv6 range", "s3:GetObject", OBJECT, ALICE, &[(IP, &["2001:db8:1234:5678::1"])], ALLOW),
            row("IPv6 exception", "s3:GetObject", OBJECT, ALICE, &[(IP, &["2001:db8:1234:5678:abcd::9"])], NotApplicable),
            row("outside", "s3:GetObject", OBJECT, ALICE, &[(IP, &["198.51.100.7"])], NotApplicable),
            row("IPv4-mapped IPv6", "s3:GetObject", OBJECT, ALICE, &[(IP, &["::ffff:192.0.2.10"])], ALLOW),
            row("no source address", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable),
            row("malformed address", "s3:GetObject", OBJECT, ALICE, &[(IP, &["192.0.2.x"])], NotApplicable),
        ],
    );
    // The Deny form of the same page ("Restricting access to specific IP addresses").
    let deny = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "IPAllow", "Effect": "Deny",
        "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
        "Condition": {"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}]}"#;
    check(
        deny,
        Kind::Resource,
        &[
            row("deny: inside", "s3:GetObject", OBJECT, ALICE, &[(IP, &["192.0.2.1"])], NotApplicable),
            row("deny: outside", "s3:GetObject", OBJECT, ALICE, &[(IP, &["203.0.113.9"])], ExplicitDeny),
            // NotIpAddress is a negated operator: an absent key makes it true.
            row("deny: no source address", "s3:GetObject", OBJECT, ALICE, &[], ExplicitDeny),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn insecure_transport_is_denied() {
    // Amazon S3 User Guide, "Enforce encryption of data in transit" (RestrictToTLSRequestsOnly).
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "RestrictToTLSRequestsOnly",
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}"#;
    const TLS: &str = "aws:SecureTransport";
    check(
        policy,
        Kind::Resource,
        &[
            row("plain HTTP", "s3:GetObject", OBJECT, ALICE, &[(TLS, &["false"])], ExplicitDeny),
            row("HTTPS", "s3:GetObject", OBJECT, ALICE, &[(TLS, &["true"])], NotApplicable),
            row("Bool is not case-sensitive", "s3:ListBucket", BUCKET, ALICE, &[(TLS, &["FALSE"])], ExplicitDeny),
            // Bool is a positive operator: an absent key makes it false.
            row("key absent", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn access_only_within_a_date_range() {
    // IAM User Guide, "AWS: Allows access within specific dates" (aws:CurrentTime with
    // DateGreaterThan and DateLessThan); the epoch rows use "Date condition operators".
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
                      "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}}]}"#;
    const NOW: &str = "aws:CurrentTime";
    check(
        policy,
        Kind::Identity,
        &[
            row("inside", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["2020-05-01T12:00:00Z"])], ALLOW),
            row("after", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["2020-07-01T00:00:00Z"])], NotApplicable),
            row("at the upper bound", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["2020-06-30T23:59:59Z"])], NotApplicable),
            row("with an offset", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["2020-07-01T01:00:00+02:00"])], ALLOW),
            row("with fractions", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["2020-06-30T23:59:58.999Z"])], ALLOW),
            row("epoch seconds", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["1590000000"])], ALLOW),
            row("no clock", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable),
            row("not a date", "s3:GetObject", OBJECT, ALICE, &[(NOW, &["yesterday"])], NotApplicable),
        ],
    );
    let epoch = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:GetObject", "Resource": "*",
        "Condition": {"DateLessThanEquals": {"aws:EpochTime": "1593561599"},
                      "DateNotEquals": {"aws:CurrentTime": "2020-05-05"}}}]}"#;
    check(
        epoch,
        Kind::Identity,
        &[
            row("epoch equal", "s3:GetObject", OBJECT, ALICE, &[ ("aws:EpochTime", &["2020-06-30T23:59:59Z"]), (NOW, &["2020-06-30T23:59:59Z"]), ], ALLOW),
            row("epoch later", "s3:GetObject", OBJECT, ALICE, &[ ("aws:EpochTime", &["1593561600"]), (NOW, &["2020-07-01T00:00:00Z"]), ], NotApplicable),
            row("bare date compares as midnight", "s3:GetObject", OBJECT, ALICE, &[("aws:EpochTime", &["1"]), (NOW, &["2020-05-05T00:00:00Z"])], NotApplicable),
        ],
    );
}

// AWS KMS Developer Guide, "kms:ViaService" and "kms:EncryptionContext:context-key"; Amazon S3
// User Guide, "Encryption context" (S3 uses aws:s3:arn = the object ARN, or the bucket ARN with
// an S3 Bucket Key).
const KMS_VIA_S3: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions for reading", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": ["kms:Describe*", "kms:Get*", "kms:List*"], "Resource": "*"},
    {"Sid": "Allow use of the key through S3 for one bucket", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
     "Condition": {
       "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
       "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
         "arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]}}}
  ]
}"#;

const ALLOW_KMS_ALL: &str = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
    "Action": "kms:*", "Resource": "*"}}"#;

#[test]
#[rustfmt::skip]
fn key_usable_only_through_s3_for_one_bucket() {
    const VIA: &str = "kms:ViaService";
    const ARN: &str = "kms:EncryptionContext:aws:s3:arn";
    const S3: &[&str] = &["s3.us-east-1.amazonaws.com"];
    check_kms(
        KMS_VIA_S3,
        &[
            call("decrypt an object via S3", ALICE, &[], "kms:Decrypt", KEY_A, &[(VIA, S3), (ARN, &[OBJECT])], None),
            call("bucket-key context", ALICE, &[], "kms:Decrypt", KEY_A, &[(VIA, S3), (ARN, &[BUCKET])], None),
            call("generate a data key via S3", ALICE, &[], "kms:GenerateDataKey", KEY_A, &[(VIA, S3), (ARN, &[OBJECT])], None),
            call("condition key names are case-insensitive", ALICE, &[], "kms:Decrypt", KEY_A, &[ ("KMS:VIASERVICE", S3), ("kms:encryptioncontext:AWS:S3:ARN", &[OBJECT]), ], None),
            call("direct call", ALICE, &[], "kms:Decrypt", KEY_A, &[(ARN, &[OBJECT])], Some("the key policy does not allow")),
            call("S3 in another region", ALICE, &[], "kms:Decrypt", KEY_A, &[(VIA, &["s3.us-west-2.amazonaws.com"]), (ARN, &[OBJECT])], Some("the key policy does not allow")),
            call("another bucket", ALICE, &[], "kms:Decrypt", KEY_A, &[(VIA, S3), (ARN, &["arn:aws:s3:::other-bucket/x"])], Some("the key policy does not allow")),
            call("another user", BOB_A, &[ALLOW_KMS_ALL], "kms:Decrypt", KEY_A, &[(VIA, S3), (ARN, &[OBJECT])], Some("the key policy does not allow")),
            call("describe needs an IAM policy", ALICE, &[], "kms:DescribeKey", KEY_A, &[], Some("the key policy delegates to IAM policies and none allows")),
            call("describe with an IAM policy", ALICE, &[ALLOW_KMS_ALL], "kms:DescribeKey", KEY_A, &[], None),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn encryption_context_keys_with_set_operators() {
    // AWS KMS Developer Guide, "kms:EncryptionContextKeys" (ForAllValues / ForAnyValue), and
    // IAM User Guide, "Single-valued vs. multivalued context keys": ForAllValues is true when
    // the key is absent, which the page warns about and counters with Null: false.
    const KEYS: &str = "kms:EncryptionContextKeys";
    let all = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}}}"#;
    check(
        all,
        Kind::Resource,
        &[
            row("ForAll: a subset", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Department"])], ALLOW),
            row("ForAll: the whole set", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Project", "Department"])], ALLOW),
            row("ForAll: an extra key", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Department", "Owner"])], NotApplicable),
            row("ForAll: key absent", "kms:Encrypt", KEY_A, ALICE, &[], ALLOW),
            row("ForAll: empty set", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &[])], ALLOW),
            row("ForAll: values are case-sensitive", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["department"])], NotApplicable),
        ],
    );
    let all_present = all.replace(
        r#""Condition": {"#,
        r#""Condition": {"Null": {"kms:EncryptionContextKeys": "false"}, "#,
    );
    check(
        &all_present,
        Kind::Resource,
        &[
            row("ForAll + Null false: key absent", "kms:Encrypt", KEY_A, ALICE, &[], NotApplicable),
            row("ForAll + Null false: a subset", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Project"])], ALLOW),
        ],
    );
    let any = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "Department"}}}}"#;
    check(
        any,
        Kind::Resource,
        &[
            row("ForAny: one of them", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Owner", "Department"])], ALLOW),
            row("ForAny: none of them", "kms:Encrypt", KEY_A, ALICE, &[(KEYS, &["Owner"])], NotApplicable),
            row("ForAny: key absent", "kms:Encrypt", KEY_A, ALICE, &[], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn for_all_values_string_not_like_deny_table() {
    // IAM User Guide, "Multivalued context key examples", "Deny a single policy condition value
    // for a multivalued context key": the first four rows are the page's table; the last
    // follows from its rule that every value must be unlike the pattern.
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "DenyRestrictedTags",
        "Effect": "Deny", "Action": ["iam:Tag*", "iam:UnTag*"], "Resource": ["*"],
        "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}}]}"#;
    const TAGS: &str = "aws:TagKeys";
    check(
        policy,
        Kind::Identity,
        &[
            row("key1:legal", "iam:TagUser", "*", ALICE, &[(TAGS, &["key1:legal"])], NotApplicable),
            row("key1:hr + key1:personnel", "iam:TagUser", "*", ALICE, &[(TAGS, &["key1:hr", "key1:personnel"])], NotApplicable),
            row("key2:audit", "iam:TagUser", "*", ALICE, &[(TAGS, &["key2:audit"])], ExplicitDeny),
            row("no tag keys", "iam:TagUser", "*", ALICE, &[], ExplicitDeny),
            row("mixed", "iam:UntagUser", "*", ALICE, &[(TAGS, &["key1:legal", "key2:audit"])], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn not_action_and_not_resource() {
    // IAM User Guide, "IAM JSON policy elements: NotAction": allow everything except IAM.
    let all_but_iam = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "NotAction": "iam:*", "Resource": "*"}}"#;
    check(
        all_but_iam,
        Kind::Identity,
        &[
            row("S3 is allowed", "s3:GetObject", OBJECT, ALICE, &[], ALLOW),
            row("IAM is not", "iam:CreateUser", "*", ALICE, &[], NotApplicable),
            row("action case does not matter", "IAM:createuser", "*", ALICE, &[], NotApplicable),
        ],
    );
    // Same page: deny everything but IAM unless signed in with MFA (BoolIfExists).
    let mfa = r#"{"Version": "2012-10-17", "Statement": {"Sid": "DenyAllUsersNotUsingMFA",
        "Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}}"#;
    const MFA: &str = "aws:MultiFactorAuthPresent";
    check(
        mfa,
        Kind::Identity,
        &[
            row("no MFA key (access keys)", "s3:GetObject", OBJECT, ALICE, &[], ExplicitDeny),
            row("MFA false", "s3:GetObject", OBJECT, ALICE, &[(MFA, &["false"])], ExplicitDeny),
            row("MFA true", "s3:GetObject", OBJECT, ALICE, &[(MFA, &["true"])], NotApplicable),
            row("IAM stays reachable", "iam:ListUsers", "*", ALICE, &[], NotApplicable),
        ],
    );
    // "IAM JSON policy elements: NotResource": deny S3 outside one bucket.
    let only_bucket = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny",
        "Action": "s3:*",
        "NotResource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]}}"#;
    check(
        only_bucket,
        Kind::Identity,
        &[
            row("inside the bucket", "s3:GetObject", OBJECT, ALICE, &[], NotApplicable),
            row("the bucket itself", "s3:ListBucket", BUCKET, ALICE, &[], NotApplicable),
            row("another bucket", "s3:GetObject", "arn:aws:s3:::other/x", ALICE, &[], ExplicitDeny),
            row("a similarly named bucket", "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket2", ALICE, &[], ExplicitDeny),
            row("other services", "kms:Decrypt", KEY_A, ALICE, &[], NotApplicable),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn not_principal_deny_spares_only_fully_listed_principals() {
    // IAM User Guide, "AWS JSON policy elements: NotPrincipal": list the account as well as
    // the user, since AWS checks the account first; for a role, the role and its account.
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "NotPrincipal": {"AWS": ["arn:aws:iam::444455556666:user/Bob", "arn:aws:iam::444455556666:root"]},
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]}]}"#;
    check(
        policy,
        Kind::Resource,
        &[
            row("Bob is spared", "s3:GetObject", OBJECT, BOB_B, &[], NotApplicable),
            row("Bob's account root is spared", "s3:GetObject", OBJECT, ROOT_B, &[], NotApplicable),
            row("Dave in Bob's account is denied", "s3:GetObject", OBJECT, DAVE_B, &[], ExplicitDeny),
            row("another account is denied", "s3:GetObject", OBJECT, ALICE, &[], ExplicitDeny),
        ],
    );
    let user_only = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "NotPrincipal": {"AWS": "arn:aws:iam::444455556666:user/Bob"},
        "Action": "s3:*", "Resource": "*"}]}"#;
    check(
        user_only,
        Kind::Resource,
        &[row("without the account, Bob is denied", "s3:GetObject", OBJECT, BOB_B, &[], ExplicitDeny)],
    );
    let role = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "NotPrincipal": {"AWS": ["arn:aws:iam::444455556666:role/admin", "444455556666"]},
        "Action": "s3:*", "Resource": "*"}]}"#;
    check(
        role,
        Kind::Resource,
        &[
            row("a session of the listed role", "s3:GetObject", OBJECT, "arn:aws:sts::444455556666:assumed-role/admin/s1", &[], NotApplicable),
            row("a session of another role", "s3:GetObject", OBJECT, "arn:aws:sts::444455556666:assumed-role/dev/s1", &[], ExplicitDeny),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn principal_element_forms() {
    // IAM User Guide, "AWS JSON policy elements: Principal": "*", account ids and root ARNs
    // (which name the account), user ARNs, role ARNs (matching their sessions), services;
    // wildcards are not allowed in principal ARNs.
    let doc = |principal: &str| {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Principal": {principal},
            "Action": "s3:GetObject", "Resource": "*"}}}}"#
        )
    };
    let cases: &[(&str, &str, Ctx, Outcome)] = &[
        (r#""*""#, ALICE, &[], ALLOW),
        (r#"{"AWS": "*"}"#, DAVE_B, &[], ALLOW),
        (r#"{"AWS": "111122223333"}"#, ALICE, &[], AllowAccount),
        (r#"{"AWS": "111122223333"}"#, ROOT_A, &[], ALLOW),
        (r#"{"AWS": "arn:aws:iam::111122223333:root"}"#, ALICE, &[], AllowAccount),
        (r#"{"AWS": "arn:aws:iam::111122223333:root"}"#, DAVE_B, &[], NotApplicable),
        (r#"{"AWS": ["arn:aws:iam::111122223333:user/alice"]}"#, ALICE, &[], ALLOW),
        (r#"{"AWS": "arn:aws:iam::111122223333:user/alice"}"#, BOB_A, &[], NotApplicable),
        (r#"{"AWS": "arn:aws:iam::111122223333:user/*"}"#, ALICE, &[], NotApplicable),
        (r#"{"AWS": ["111122223333", "arn:aws:iam::111122223333:user/alice"]}"#, ALICE, &[], ALLOW),
        (r#"{"AWS": "arn:aws:iam::111122223333:role/team/Reader"}"#, "arn:aws:sts::111122223333:assumed-role/Reader/s", &[], ALLOW),
        (r#"{"AWS": "arn:aws:iam::111122223333:role/Reader"}"#, "arn:aws:sts::111122223333:assumed-role/Writer/s", &[], NotApplicable),
        (r#"{"AWS": "arn:aws:sts::111122223333:assumed-role/Reader/s"}"#, "arn:aws:sts::111122223333:assumed-role/Reader/s", &[], ALLOW),
        (r#"{"Service": "cloudtrail.amazonaws.com"}"#, ALICE, &[("aws:PrincipalServiceName", &["cloudtrail.amazonaws.com"])], ALLOW),
        (r#"{"Service": "cloudtrail.amazonaws.com"}"#, ALICE, &[], NotApplicable),
        (r#"{"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#, ALICE, &[], NotApplicable),
    ];
    let mut failures = Vec::new();
    for (principal, caller, ctx, expect) in cases {
        let d = parse(&doc(principal), Kind::Resource);
        let ctx = context(ctx);
        let q = Query {
            action: "s3:GetObject",
            resource: OBJECT,
            principal_arn: caller,
            principal_account: account_of(caller),
            context: &ctx,
        };
        let got = evaluate(&d, &q, true);
        if got != *expect {
            failures.push(format!(
                "{principal} for {caller}: expected {expect:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[rustfmt::skip]
fn cross_account_bucket_access_needs_both_sides() {
    // Amazon S3 User Guide, "Example 2: Bucket owner granting cross-account bucket
    // permissions" (account A's bucket policy grants account B; B's administrator delegates
    // to user Dave), and IAM User Guide, "Cross-account policy evaluation logic".
    let bucket_policy = r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "Example permissions", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
         "Action": ["s3:GetLifecycleConfiguration", "s3:ListBucket", "s3:GetObject"],
         "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]},
        {"Sid": "Bob of A may read", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Sid": "Account A delegates writes", "Effect": "Allow",
         "Principal": {"AWS": "111122223333"},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Sid": "Dave directly", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::444455556666:user/Dave"},
         "Action": "s3:GetObjectTagging", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"}
    ]}"#;
    let deny_reads = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny",
        "Action": "s3:GetObject", "Resource": "*"}}"#;
    const CROSS: Option<&str> = Some("cross-account access needs both sides");
    const NONE: Option<&str> = Some("no policy allows");
    let dave: &'static [&'static str] = &[ALLOW_DAVE];
    check_decide(
        Some(bucket_policy),
        Some("111122223333"),
        &[
            call("Dave with his account's delegation", DAVE_B, dave, "s3:ListBucket", BUCKET, &[], None),
            call("Dave without it", DAVE_B, &[], "s3:GetObject", OBJECT, &[], CROSS),
            call("account B's root", ROOT_B, &[], "s3:GetObject", OBJECT, &[], None),
            call("an action A did not grant", DAVE_B, dave, "s3:PutObject", OBJECT, &[], CROSS),
            call("named directly, still needs his own policy", DAVE_B, &[], "s3:GetObjectTagging", OBJECT, &[], CROSS),
            call("named directly, with his policy", DAVE_B, dave, "s3:GetObjectTagging", OBJECT, &[], None),
            call("A's user named by the bucket policy", BOB_A, &[], "s3:GetObject", OBJECT, &[], None),
            call("A's user through the account: needs IAM", ALICE, &[], "s3:PutObject", OBJECT, &[], NONE),
            call("A's user through the account, with IAM", ALICE, &[ALLOW_S3_ALL], "s3:PutObject", OBJECT, &[], None),
            call("A's user, nothing applies", ALICE, &[], "s3:DeleteObject", OBJECT, &[], NONE),
            call("A's root needs no policy", ROOT_A, &[], "s3:DeleteObject", OBJECT, &[], None),
            call("an identity deny beats the bucket's allow", BOB_A, &[deny_reads], "s3:GetObject", OBJECT, &[], Some("explicit deny")),
        ],
    );
    // Actions on no resource (ListBuckets, CreateBucket) are judged in the caller's account.
    check_decide(
        None,
        None,
        &[
            call("ListBuckets without a policy", ALICE, &[], "s3:ListAllMyBuckets", "*", &[], NONE),
            call("ListBuckets with one", ALICE, &[ALLOW_S3_ALL], "s3:ListAllMyBuckets", "*", &[], None),
            call("ListBuckets as root", ROOT_A, &[], "s3:ListAllMyBuckets", "*", &[], None),
        ],
    );
}

// S3 User Guide, "Examples of Amazon S3 bucket policies": granting read-only permission to
// anonymous users ("Principal": "*"), and IAM's "Principal" page: for anonymous users
// `"*"` and `{"AWS": "*"}` are equivalent, an account principal never reaches them, and a
// Deny with NotPrincipal denies everyone not excepted — anonymous callers included.
// `aws:PrincipalArn` is absent for them, so `...IfExists` conditions on it hold.
#[rustfmt::skip]
#[test]
fn anonymous_callers_get_only_what_everyone_is_granted() {
    let public_read = r#"{"Version": "2012-10-17", "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
         "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Sid": "AwsStar", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket"},
        {"Sid": "AccountOnly", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Sid": "OnlyFromRoles", "Effect": "Allow", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
         "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}},
        {"Sid": "TaggingUnlessNamed", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObjectTagging",
         "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
         "Condition": {"ArnNotEqualsIfExists": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/alice"}}}
    ]}"#;
    const NONE: Option<&str> = Some("no policy allows anonymous access");
    check_decide(
        Some(public_read),
        Some("111122223333"),
        &[
            call("anonymous read", "", &[], "s3:GetObject", OBJECT, &[], None),
            call("{AWS: *} is everyone too", "", &[], "s3:ListBucket", BUCKET, &[], None),
            call("an account grant does not reach anonymous", "", &[], "s3:PutObject", OBJECT, &[], NONE),
            call("a condition on an absent key fails", "", &[], "s3:DeleteObject", OBJECT, &[], NONE),
            call("...IfExists on an absent key holds", "", &[], "s3:GetObjectTagging", OBJECT, &[], None),
            call("nothing else", "", &[], "s3:PutBucketPolicy", BUCKET, &[], NONE),
        ],
    );
    let deny_but_owner = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"]},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/secret/*"}
    ]}"#;
    check_decide(
        Some(deny_but_owner),
        Some("111122223333"),
        &[
            call("public part", "", &[], "s3:GetObject", OBJECT, &[], None),
            call("NotPrincipal denies anonymous", "", &[], "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/secret/a", &[], Some("explicit deny in a resource-based policy")),
            call("and not the excepted user", ALICE, &[], "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/secret/a", &[], None),
        ],
    );
    check_decide(None, Some("111122223333"), &[
        call("no policy: nothing", "", &[], "s3:GetObject", OBJECT, &[], NONE),
    ]);
}

const ALLOW_DAVE: &str = r#"{"Version": "2012-10-17", "Statement": {"Sid": "Example",
    "Effect": "Allow", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"]}}"#;

// AWS KMS Developer Guide, "Default key policy": the "Enable IAM User Permissions" statement
// gives the account (and so its IAM policies) access to the key.
const DEFAULT_KEY_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [{
    "Sid": "Enable IAM User Permissions", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": "kms:*", "Resource": "*"
  }]
}"#;

#[test]
#[rustfmt::skip]
fn default_key_policy_delegates_to_iam_policies() {
    let decrypt_only = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}"#;
    let deny_decrypt = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny",
        "Action": "kms:Decrypt", "Resource": "*"}}"#;
    const DELEGATED: Option<&str> =
        Some("the key policy delegates to IAM policies and none allows");
    check_kms(
        DEFAULT_KEY_POLICY,
        &[
            call("the account's root", ROOT_A, &[], "kms:ScheduleKeyDeletion", KEY_A, &[], None),
            call("a user without IAM policy", ALICE, &[], "kms:Decrypt", KEY_A, &[], DELEGATED),
            call("a user with one", ALICE, &[decrypt_only], "kms:Decrypt", KEY_A, &[], None),
            call("an action the IAM policy lacks", ALICE, &[decrypt_only], "kms:Encrypt", KEY_A, &[], DELEGATED),
            call("an IAM deny", ALICE, &[ALLOW_KMS_ALL, deny_decrypt], "kms:Decrypt", KEY_A, &[], Some("explicit deny")),
            call("another account's user", DAVE_B, &[ALLOW_KMS_ALL], "kms:Decrypt", KEY_A, &[], Some("the key policy does not allow")),
            call("another account's root", ROOT_B, &[], "kms:Decrypt", KEY_A, &[], Some("the key policy does not allow")),
        ],
    );
    // "Allowing users in other accounts to use a KMS key": the key policy names the external
    // account, whose administrators then delegate with IAM policies.
    let cross = DEFAULT_KEY_POLICY.replace(
        "}]\n}",
        r#"}, {"Sid": "Allow an external account", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
            {"Sid": "Bob directly", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::444455556666:user/Bob"},
             "Action": "kms:Encrypt", "Resource": "*"}]}"#,
    );
    const CROSS: Option<&str> = Some("cross-account access needs both sides");
    check_kms(
        &cross,
        &[
            call("external user with IAM policy", DAVE_B, &[ALLOW_KMS_ALL], "kms:Decrypt", KEY_A, &[], None),
            call("external user without", DAVE_B, &[], "kms:Decrypt", KEY_A, &[], CROSS),
            call("external root", ROOT_B, &[], "kms:Decrypt", KEY_A, &[], None),
            call("external action not granted", DAVE_B, &[ALLOW_KMS_ALL], "kms:ScheduleKeyDeletion", KEY_A, &[], Some("the key policy does not allow")),
            call("named external user still needs IAM", BOB_B, &[], "kms:Encrypt", KEY_A, &[], CROSS),
            call("named external user with IAM", BOB_B, &[ALLOW_KMS_ALL], "kms:Encrypt", KEY_A, &[], None),
        ],
    );
    // A key policy that names only a user: IAM policies never grant, and even the root user
    // is locked out ("Key policies": "Unless the key policy explicitly allows it, you cannot
    // use IAM policies to allow access to a KMS key").
    let alice_only = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:*",
        "Resource": "*"}}"#;
    check_kms(
        alice_only,
        &[
            call("the named user", ALICE, &[], "kms:Decrypt", KEY_A, &[], None),
            call("another user with IAM allow", BOB_A, &[ALLOW_KMS_ALL], "kms:Decrypt", KEY_A, &[], Some("the key policy does not allow")),
            call("the root user", ROOT_A, &[], "kms:Decrypt", KEY_A, &[], Some("the key policy does not allow")),
        ],
    );
}
