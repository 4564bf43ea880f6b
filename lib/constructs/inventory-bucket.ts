/**
 * Where take-inventory writes `runs/<runId>/inventory.json` (variable values already redacted) for the Distributed
 * Map's ItemReader. Objects live 7 days: long enough to look at a run, short enough that nothing accumulates.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Key prefix of every inventory object. */
export const INVENTORY_PREFIX = 'runs/';

export interface InventoryBucketProps {
  readonly key: kms.IKey;
}

export class InventoryBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: InventoryBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      // One data key per bucket instead of one KMS call per object.
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      lifecycleRules: [
        { id: 'ExpireRunInventories', prefix: INVENTORY_PREFIX, expiration: Duration.days(7) },
        { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // RETAIN (the default) without autoDeleteObjects: that would add a custom-resource Lambda with s3:DeleteObject*
      // to the stack for a bucket whose objects expire on their own within 7 days. `cdk destroy` leaves it behind;
      // empty and delete it by hand (see the cleanup notes).
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Holds only redacted, engine-written inventories that expire after 7 days, read and written by two engine ' +
        'roles; a second bucket for access logs would hold more than this one. Use CloudTrail S3 data events if ' +
        'your organisation requires object-level logs.',
    });
  }
}
