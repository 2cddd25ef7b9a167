// Reference check of the hub's wire format with Apache Avro for Java (single-object encoding).
// Usage: java -cp 'libs/*' AvroInterop.java SCHEMA.avsc IN.bin OUT.bin
// Decodes IN.bin with BinaryMessageDecoder (checks marker, fingerprint and body), prints the
// schema's parsing fingerprint and the record, and re-encodes it with BinaryMessageEncoder to OUT.bin.
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

public class AvroInterop {
  public static void main(String[] args) throws Exception {
    Schema schema = new Schema.Parser().parse(Files.readString(Path.of(args[0])));
    BinaryMessageDecoder<GenericRecord> decoder =
        new BinaryMessageDecoder<>(GenericData.get(), schema);
    GenericRecord record = decoder.decode(ByteBuffer.wrap(Files.readAllBytes(Path.of(args[1]))));
    System.out.println("fingerprint=" + Long.toHexString(SchemaNormalization.parsingFingerprint64(schema)));
    System.out.println("record=" + record);
    BinaryMessageEncoder<GenericRecord> encoder =
        new BinaryMessageEncoder<>(GenericData.get(), schema);
    ByteBuffer out = encoder.encode(record);
    byte[] bytes = new byte[out.remaining()];
    out.get(bytes);
    Files.write(Path.of(args[2]), bytes);
  }
}
