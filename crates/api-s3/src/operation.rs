//! The closed set of S3 operations, and every per-operation fact the request path needs:
//! the name AWS gives it, the IAM action a policy must allow (AWS's "Actions, resources,
//! and condition keys for Amazon S3"), whether CloudTrail counts it as a data event,
//! whether it only reads, and whether the bucket owner's root may always perform it.
//! Adding an operation is one variant here and one handler; the compiler finds the rest.

/// Declares [`Operation`] from its implemented variants, so that each name is written
/// once: the variants, [`Operation::IMPLEMENTED`] and [`Operation::name`].
macro_rules! operations {
    ($($op:ident),* $(,)?) => {
        /// An S3 operation. Operations of botocore's S3 model that Coffer does not
        /// implement keep their real names (for the audit trail and metrics) as
        /// [`Operation::Unimplemented`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($op,)*
            /// An operation of the S3 API that Coffer does not implement (by its AWS
            /// name), or `"Unknown"`.
            Unimplemented(&'static str),
        }

        impl Operation {
            /// Every implemented operation.
            pub const IMPLEMENTED: &'static [Operation] = &[$(Operation::$op),*];

            /// AWS's name of the operation.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                    Operation::Unimplemented(name) => name,
                }
            }
        }
    };
}

operations!(
    AbortMultipartUpload,
    CompleteMultipartUpload,
    CopyObject,
    CreateBucket,
    CreateMultipartUpload,
    DeleteBucket,
    DeleteAccountPublicAccessBlock,
    DeleteBucketCors,
    DeleteBucketOwnershipControls,
    DeleteBucketEncryption,
    DeleteBucketLifecycle,
    DeleteBucketPolicy,
    DeleteBucketTagging,
    DeletePublicAccessBlock,
    DeleteObject,
    DeleteObjectTagging,
    DeleteObjects,
    GetAccountPublicAccessBlock,
    GetBucketAcl,
    GetBucketCors,
    GetBucketEncryption,
    GetBucketLifecycleConfiguration,
    GetBucketLocation,
    GetBucketLogging,
    GetBucketOwnershipControls,
    GetBucketPolicy,
    GetBucketPolicyStatus,
    GetBucketTagging,
    GetBucketVersioning,
    GetObject,
    GetObjectAcl,
    GetObjectAttributes,
    GetObjectLegalHold,
    GetObjectLockConfiguration,
    GetObjectRetention,
    GetObjectTagging,
    GetPublicAccessBlock,
    HeadBucket,
    HeadObject,
    ListBuckets,
    ListMultipartUploads,
    ListObjectVersions,
    ListObjects,
    ListObjectsV2,
    ListParts,
    PostObject,
    PutAccountPublicAccessBlock,
    PutBucketAcl,
    PutBucketCors,
    PutBucketEncryption,
    PutBucketLifecycleConfiguration,
    PutBucketLogging,
    PutBucketOwnershipControls,
    PutBucketPolicy,
    PutBucketTagging,
    PutBucketVersioning,
    PutObject,
    PutObjectAcl,
    PutObjectLegalHold,
    PutObjectLockConfiguration,
    PutObjectRetention,
    PutObjectTagging,
    PutPublicAccessBlock,
    RestoreObject,
    UpdateObjectEncryption,
    UploadPart,
    UploadPartCopy,
);

impl Operation {
    /// The operation called `name` (as s3s and botocore name them); an unknown name is
    /// `Unimplemented("Unknown")`.
    pub fn from_name(name: &str) -> Operation {
        Self::IMPLEMENTED
            .iter()
            .copied()
            .find(|op| op.name() == name)
            .unwrap_or_else(|| {
                Operation::Unimplemented(
                    UNIMPLEMENTED
                        .iter()
                        .copied()
                        .find(|n| *n == name)
                        .unwrap_or("Unknown"),
                )
            })
    }

    /// The IAM action a policy must allow.
    pub fn iam_action(self) -> &'static str {
        use Operation::*;
        match self {
            GetObject | HeadObject | GetObjectAttributes => "s3:GetObject",
            PutObject
            | CopyObject
            | PostObject
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload => "s3:PutObject",
            AbortMultipartUpload => "s3:AbortMultipartUpload",
            ListParts => "s3:ListMultipartUploadParts",
            ListMultipartUploads => "s3:ListBucketMultipartUploads",
            DeleteObject | DeleteObjects => "s3:DeleteObject",
            ListObjects | ListObjectsV2 | HeadBucket => "s3:ListBucket",
            ListObjectVersions => "s3:ListBucketVersions",
            ListBuckets => "s3:ListAllMyBuckets",
            CreateBucket => "s3:CreateBucket",
            DeleteBucket => "s3:DeleteBucket",
            GetBucketLocation => "s3:GetBucketLocation",
            GetBucketVersioning => "s3:GetBucketVersioning",
            PutBucketVersioning => "s3:PutBucketVersioning",
            PutBucketEncryption | DeleteBucketEncryption => "s3:PutEncryptionConfiguration",
            GetBucketEncryption => "s3:GetEncryptionConfiguration",
            GetObjectTagging => "s3:GetObjectTagging",
            PutObjectTagging => "s3:PutObjectTagging",
            DeleteObjectTagging => "s3:DeleteObjectTagging",
            UpdateObjectEncryption => "s3:UpdateObjectEncryption",
            PutObjectLockConfiguration => "s3:PutBucketObjectLockConfiguration",
            PutBucketLifecycleConfiguration | DeleteBucketLifecycle => {
                "s3:PutLifecycleConfiguration"
            }
            GetBucketLifecycleConfiguration => "s3:GetLifecycleConfiguration",
            PutBucketTagging | DeleteBucketTagging => "s3:PutBucketTagging",
            GetBucketTagging => "s3:GetBucketTagging",
            PutBucketCors | DeleteBucketCors => "s3:PutBucketCORS",
            PutAccountPublicAccessBlock | DeleteAccountPublicAccessBlock => {
                "s3:PutAccountPublicAccessBlock"
            }
            GetAccountPublicAccessBlock => "s3:GetAccountPublicAccessBlock",
            GetBucketCors => "s3:GetBucketCORS",
            PutBucketOwnershipControls | DeleteBucketOwnershipControls => {
                "s3:PutBucketOwnershipControls"
            }
            GetBucketOwnershipControls => "s3:GetBucketOwnershipControls",
            GetBucketAcl => "s3:GetBucketAcl",
            PutBucketLogging => "s3:PutBucketLogging",
            GetBucketLogging => "s3:GetBucketLogging",
            PutBucketAcl => "s3:PutBucketAcl",
            GetObjectAcl => "s3:GetObjectAcl",
            PutObjectAcl => "s3:PutObjectAcl",
            GetObjectLockConfiguration => "s3:GetBucketObjectLockConfiguration",
            PutObjectRetention => "s3:PutObjectRetention",
            GetObjectRetention => "s3:GetObjectRetention",
            PutObjectLegalHold => "s3:PutObjectLegalHold",
            GetObjectLegalHold => "s3:GetObjectLegalHold",
            RestoreObject => "s3:RestoreObject",
            PutBucketPolicy => "s3:PutBucketPolicy",
            GetBucketPolicy => "s3:GetBucketPolicy",
            DeleteBucketPolicy => "s3:DeleteBucketPolicy",
            GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
            PutPublicAccessBlock | DeletePublicAccessBlock => "s3:PutBucketPublicAccessBlock",
            GetPublicAccessBlock => "s3:GetBucketPublicAccessBlock",
            Unimplemented(_) => "s3:Unknown",
        }
    }

    /// The IAM action of a call that names a version (`versionId`): AWS asks for the
    /// `...Version` actions then, so that a policy can allow the latest version alone.
    pub fn iam_action_for_version(self) -> &'static str {
        use Operation::*;
        match self {
            GetObject | HeadObject => "s3:GetObjectVersion",
            GetObjectAttributes => "s3:GetObjectVersionAttributes",
            GetObjectAcl => "s3:GetObjectVersionAcl",
            PutObjectAcl => "s3:PutObjectVersionAcl",
            DeleteObject => "s3:DeleteObjectVersion",
            GetObjectTagging => "s3:GetObjectVersionTagging",
            PutObjectTagging => "s3:PutObjectVersionTagging",
            DeleteObjectTagging => "s3:DeleteObjectVersionTagging",
            other => other.iam_action(),
        }
    }

    /// Whether CloudTrail records the call as a data event even when it names no object
    /// (every call on an object is one).
    pub fn bucket_data_event(self) -> bool {
        use Operation::*;
        match self {
            DeleteObjects | ListObjects | ListObjectsV2 | ListObjectVersions
            | ListMultipartUploads => true,
            AbortMultipartUpload
            | CompleteMultipartUpload
            | CopyObject
            | CreateBucket
            | CreateMultipartUpload
            | DeleteBucket
            | DeleteAccountPublicAccessBlock
            | DeleteBucketCors
            | DeleteBucketOwnershipControls
            | DeleteBucketEncryption
            | DeleteBucketLifecycle
            | DeleteBucketPolicy
            | DeleteBucketTagging
            | DeletePublicAccessBlock
            | DeleteObject
            | DeleteObjectTagging
            | GetAccountPublicAccessBlock
            | GetBucketAcl
            | GetBucketCors
            | GetBucketEncryption
            | GetBucketLifecycleConfiguration
            | GetBucketLocation
            | GetBucketLogging
            | GetBucketOwnershipControls
            | GetBucketPolicy
            | GetBucketPolicyStatus
            | GetBucketTagging
            | GetBucketVersioning
            | GetObject
            | GetObjectAcl
            | GetObjectAttributes
            | GetObjectLegalHold
            | GetObjectLockConfiguration
            | GetObjectRetention
            | GetObjectTagging
            | GetPublicAccessBlock
            | HeadBucket
            | HeadObject
            | ListBuckets
            | ListParts
            | PostObject
            | PutAccountPublicAccessBlock
            | PutBucketAcl
            | PutBucketCors
            | PutBucketEncryption
            | PutBucketLifecycleConfiguration
            | PutBucketLogging
            | PutBucketOwnershipControls
            | PutBucketPolicy
            | PutBucketTagging
            | PutBucketVersioning
            | PutObject
            | PutObjectAcl
            | PutObjectLegalHold
            | PutObjectLockConfiguration
            | PutObjectRetention
            | PutObjectTagging
            | PutPublicAccessBlock
            | RestoreObject
            | UpdateObjectEncryption
            | UploadPart
            | UploadPartCopy
            | Unimplemented(_) => false,
        }
    }

    /// Whether the operation only reads (CloudTrail's `readOnly`).
    pub fn read_only(self) -> bool {
        use Operation::*;
        match self {
            GetAccountPublicAccessBlock
            | GetBucketAcl
            | GetBucketCors
            | GetBucketEncryption
            | GetBucketLifecycleConfiguration
            | GetBucketLocation
            | GetBucketLogging
            | GetBucketOwnershipControls
            | GetBucketPolicy
            | GetBucketPolicyStatus
            | GetBucketTagging
            | GetBucketVersioning
            | GetObject
            | GetObjectAcl
            | GetObjectAttributes
            | GetObjectLegalHold
            | GetObjectLockConfiguration
            | GetObjectRetention
            | GetObjectTagging
            | GetPublicAccessBlock
            | HeadBucket
            | HeadObject
            | ListBuckets
            | ListMultipartUploads
            | ListObjectVersions
            | ListObjects
            | ListObjectsV2
            | ListParts => true,
            AbortMultipartUpload
            | CompleteMultipartUpload
            | CopyObject
            | CreateBucket
            | CreateMultipartUpload
            | DeleteBucket
            | DeleteAccountPublicAccessBlock
            | DeleteBucketCors
            | DeleteBucketOwnershipControls
            | DeleteBucketEncryption
            | DeleteBucketLifecycle
            | DeleteBucketPolicy
            | DeleteBucketTagging
            | DeletePublicAccessBlock
            | DeleteObject
            | DeleteObjectTagging
            | DeleteObjects
            | PostObject
            | PutAccountPublicAccessBlock
            | PutBucketAcl
            | PutBucketCors
            | PutBucketEncryption
            | PutBucketLifecycleConfiguration
            | PutBucketLogging
            | PutBucketOwnershipControls
            | PutBucketPolicy
            | PutBucketTagging
            | PutBucketVersioning
            | PutObject
            | PutObjectAcl
            | PutObjectLegalHold
            | PutObjectLockConfiguration
            | PutObjectRetention
            | PutObjectTagging
            | PutPublicAccessBlock
            | RestoreObject
            | UpdateObjectEncryption
            | UploadPart
            | UploadPartCopy => false,
            Unimplemented(name) => {
                name.starts_with("Get") || name.starts_with("List") || name.starts_with("Head")
            }
        }
    }

    /// How S3's server access logs name the operation (`REST.METHOD.RESOURCE`).
    pub fn log_name(self, method: &str) -> String {
        use Operation::*;
        let name = match self {
            GetObject => "REST.GET.OBJECT",
            HeadObject => "REST.HEAD.OBJECT",
            PutObject => "REST.PUT.OBJECT",
            PostObject => "REST.POST.OBJECT",
            DeleteObject => "REST.DELETE.OBJECT",
            CopyObject => "REST.COPY.OBJECT",
            GetObjectAttributes => "REST.GET.OBJECT_ATTRIBUTES",
            ListObjects | ListObjectsV2 => "REST.GET.BUCKET",
            ListObjectVersions => "REST.GET.BUCKETVERSIONS",
            HeadBucket => "REST.HEAD.BUCKET",
            CreateBucket => "REST.PUT.BUCKET",
            DeleteBucket => "REST.DELETE.BUCKET",
            ListBuckets => "REST.GET.SERVICE",
            CreateMultipartUpload => "REST.POST.UPLOADS",
            UploadPart => "REST.PUT.PART",
            UploadPartCopy => "REST.COPY.PART",
            CompleteMultipartUpload => "REST.POST.UPLOAD",
            AbortMultipartUpload => "REST.DELETE.UPLOAD",
            ListParts => "REST.GET.UPLOAD",
            ListMultipartUploads => "REST.GET.UPLOADS",
            DeleteObjects => "REST.POST.MULTI_OBJECT_DELETE",
            GetBucketAcl | GetObjectAcl => "REST.GET.ACL",
            PutBucketAcl | PutObjectAcl => "REST.PUT.ACL",
            GetBucketOwnershipControls => "REST.GET.OWNERSHIP_CONTROLS",
            PutBucketOwnershipControls => "REST.PUT.OWNERSHIP_CONTROLS",
            DeleteBucketOwnershipControls => "REST.DELETE.OWNERSHIP_CONTROLS",
            GetBucketLocation => "REST.GET.LOCATION",
            GetBucketVersioning => "REST.GET.VERSIONING",
            PutBucketVersioning => "REST.PUT.VERSIONING",
            GetBucketLogging => "REST.GET.LOGGING_STATUS",
            PutBucketLogging => "REST.PUT.LOGGING_STATUS",
            GetBucketPolicy => "REST.GET.BUCKETPOLICY",
            PutBucketPolicy => "REST.PUT.BUCKETPOLICY",
            DeleteBucketPolicy => "REST.DELETE.BUCKETPOLICY",
            GetBucketPolicyStatus => "REST.GET.POLICY_STATUS",
            GetBucketCors => "REST.GET.CORS",
            PutBucketCors => "REST.PUT.CORS",
            DeleteBucketCors => "REST.DELETE.CORS",
            GetBucketLifecycleConfiguration => "REST.GET.LIFECYCLE",
            PutBucketLifecycleConfiguration => "REST.PUT.LIFECYCLE",
            DeleteBucketLifecycle => "REST.DELETE.LIFECYCLE",
            GetBucketTagging => "REST.GET.TAGGING",
            PutBucketTagging => "REST.PUT.TAGGING",
            DeleteBucketTagging => "REST.DELETE.TAGGING",
            GetObjectTagging => "REST.GET.OBJECT_TAGGING",
            PutObjectTagging => "REST.PUT.OBJECT_TAGGING",
            DeleteObjectTagging => "REST.DELETE.OBJECT_TAGGING",
            GetBucketEncryption => "REST.GET.ENCRYPTION",
            PutBucketEncryption => "REST.PUT.ENCRYPTION",
            DeleteBucketEncryption => "REST.DELETE.ENCRYPTION",
            UpdateObjectEncryption => "REST.PUT.OBJECT_ENCRYPTION",
            GetPublicAccessBlock => "REST.GET.PUBLIC_ACCESS_BLOCK",
            PutPublicAccessBlock => "REST.PUT.PUBLIC_ACCESS_BLOCK",
            DeletePublicAccessBlock => "REST.DELETE.PUBLIC_ACCESS_BLOCK",
            GetAccountPublicAccessBlock => "REST.GET.ACCOUNT_PUBLIC_ACCESS_BLOCK",
            PutAccountPublicAccessBlock => "REST.PUT.ACCOUNT_PUBLIC_ACCESS_BLOCK",
            DeleteAccountPublicAccessBlock => "REST.DELETE.ACCOUNT_PUBLIC_ACCESS_BLOCK",
            GetObjectLockConfiguration => "REST.GET.OBJECT_LOCK_CONFIGURATION",
            PutObjectLockConfiguration => "REST.PUT.OBJECT_LOCK_CONFIGURATION",
            GetObjectRetention => "REST.GET.RETENTION",
            PutObjectRetention => "REST.PUT.RETENTION",
            GetObjectLegalHold => "REST.GET.LEGAL_HOLD",
            PutObjectLegalHold => "REST.PUT.LEGAL_HOLD",
            RestoreObject => "REST.POST.RESTORE",
            Unimplemented(name) => {
                return format!("REST.{}.{}", method, name.to_ascii_uppercase());
            }
        };
        name.to_owned()
    }

    /// Operations the root user of the bucket's account may always perform, whatever the
    /// bucket policy says, so that a policy cannot lock its owner out (as on AWS).
    pub fn owner_root_always(self) -> bool {
        matches!(
            self,
            Operation::GetBucketPolicy | Operation::PutBucketPolicy | Operation::DeleteBucketPolicy
        )
    }
}

/// The rest of the S3 API (botocore's model): not implemented here, but named in audit
/// records and metrics by their real names rather than "Unknown".
const UNIMPLEMENTED: &[&str] = &[
    "CreateBucketMetadataConfiguration",
    "CreateBucketMetadataTableConfiguration",
    "CreateSession",
    "DeleteBucketAnalyticsConfiguration",
    "DeleteBucketIntelligentTieringConfiguration",
    "DeleteBucketInventoryConfiguration",
    "DeleteBucketMetadataConfiguration",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketMetricsConfiguration",
    "DeleteBucketReplication",
    "DeleteBucketWebsite",
    "GetBucketAbac",
    "GetBucketAccelerateConfiguration",
    "GetBucketAnalyticsConfiguration",
    "GetBucketIntelligentTieringConfiguration",
    "GetBucketInventoryConfiguration",
    "GetBucketLifecycle",
    "GetBucketMetadataConfiguration",
    "GetBucketMetadataTableConfiguration",
    "GetBucketMetricsConfiguration",
    "GetBucketNotification",
    "GetBucketNotificationConfiguration",
    "GetBucketReplication",
    "GetBucketRequestPayment",
    "GetBucketWebsite",
    "GetObjectTorrent",
    "ListBucketAnalyticsConfigurations",
    "ListBucketIntelligentTieringConfigurations",
    "ListBucketInventoryConfigurations",
    "ListBucketMetricsConfigurations",
    "ListDirectoryBuckets",
    "PutBucketAbac",
    "PutBucketAccelerateConfiguration",
    "PutBucketAnalyticsConfiguration",
    "PutBucketIntelligentTieringConfiguration",
    "PutBucketInventoryConfiguration",
    "PutBucketLifecycle",
    "PutBucketMetricsConfiguration",
    "PutBucketNotification",
    "PutBucketNotificationConfiguration",
    "PutBucketReplication",
    "PutBucketRequestPayment",
    "PutBucketWebsite",
    "RenameObject",
    "SelectObjectContent",
    "UpdateBucketMetadataInventoryTableConfiguration",
    "UpdateBucketMetadataJournalTableConfiguration",
    "WriteGetObjectResponse",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_implemented_operation_has_an_action() {
        for op in Operation::IMPLEMENTED {
            assert_eq!(Operation::from_name(op.name()), *op);
            assert_ne!(op.iam_action(), "s3:Unknown", "{op:?}");
        }
        for name in UNIMPLEMENTED {
            assert_eq!(Operation::from_name(name), Operation::Unimplemented(name));
            assert!(
                !Operation::IMPLEMENTED.iter().any(|op| op.name() == *name),
                "{name} is implemented and listed as unimplemented"
            );
        }
        assert_eq!(
            Operation::from_name("NoSuchThing"),
            Operation::Unimplemented("Unknown")
        );
    }

    #[test]
    fn read_only_operations_are_the_gets_lists_and_heads() {
        for op in Operation::IMPLEMENTED {
            let n = op.name();
            assert_eq!(
                op.read_only(),
                n.starts_with("Get") || n.starts_with("List") || n.starts_with("Head"),
                "{n}"
            );
        }
    }
}
