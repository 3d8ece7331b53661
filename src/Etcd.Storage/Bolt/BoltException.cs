namespace Etcd.Storage.Bolt;

/// <summary>
/// An error raised by the bbolt-format engine. <see cref="Exception.Message"/> is bbolt 1.3.x's error
/// string (<c>errors.go</c>), e.g. <c>"bucket not found"</c>, so callers can match etcd's behaviour.
/// </summary>
public sealed class BoltException : Exception
{
    /// <summary>bbolt's ErrDatabaseNotOpen.</summary>
    public const string DatabaseNotOpen = "database not open";

    /// <summary>bbolt's ErrInvalid (bad magic).</summary>
    public const string Invalid = "invalid database";

    /// <summary>bbolt's ErrVersionMismatch.</summary>
    public const string VersionMismatch = "version mismatch";

    /// <summary>bbolt's ErrChecksum.</summary>
    public const string ChecksumError = "checksum error";

    /// <summary>bbolt's ErrTimeout (file lock not acquired).</summary>
    public const string Timeout = "timeout";

    /// <summary>bbolt's ErrDatabaseReadOnly.</summary>
    public const string DatabaseReadOnly = "database is in read-only mode";

    /// <summary>bbolt's ErrTxNotWritable.</summary>
    public const string TxNotWritable = "tx not writable";

    /// <summary>bbolt's ErrTxClosed.</summary>
    public const string TxClosed = "tx closed";

    /// <summary>bbolt's ErrBucketNotFound.</summary>
    public const string BucketNotFound = "bucket not found";

    /// <summary>bbolt's ErrBucketExists.</summary>
    public const string BucketExists = "bucket already exists";

    /// <summary>bbolt's ErrBucketNameRequired.</summary>
    public const string BucketNameRequired = "bucket name required";

    /// <summary>bbolt's ErrKeyRequired.</summary>
    public const string KeyRequired = "key required";

    /// <summary>bbolt's ErrKeyTooLarge.</summary>
    public const string KeyTooLarge = "key too large";

    /// <summary>bbolt's ErrValueTooLarge.</summary>
    public const string ValueTooLarge = "value too large";

    /// <summary>bbolt's ErrIncompatibleValue (a key/bucket kind clash).</summary>
    public const string IncompatibleValue = "incompatible value";

    /// <summary>Creates the exception with one of the message constants of this type.</summary>
    public BoltException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner cause.</summary>
    public BoltException(string message, Exception inner) : base(message, inner)
    {
    }
}
